/* objstore_internal.h -- what objstore.c shares with its backends, local.c and s3.c. */
#ifndef OBJSTORE_INTERNAL_H
#define OBJSTORE_INTERNAL_H

#include <stddef.h>

#include "objstore/objstore.h"

/* One backend: the calls behind objstore_put/get/delete/close. The key is already checked. */
typedef struct {
    int (*put)(objstore_t *s, const char *key, const void *data, size_t len, const char *content_type,
               char *err, size_t errlen);
    int (*get)(objstore_t *s, const char *key, void **data, size_t *len, char *err, size_t errlen);
    int (*del)(objstore_t *s, const char *key, char *err, size_t errlen);
    void (*close)(objstore_t *s);
} objstore__backend_t;

/* The first member of each backend's own struct. */
struct objstore {
    const objstore__backend_t *backend;
};

objstore_t *objstore__local_open(const objstore_conf_t *conf, char *err, size_t errlen);
objstore_t *objstore__s3_open(const objstore_conf_t *conf, char *err, size_t errlen);

/* snprintf into err, which may be NULL (errlen 0). Returns rc, so failures read
 * `return objstore__fail(OBJSTORE_EIO, err, errlen, "...", ...);`. */
int objstore__fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
