/* objstore.c -- the object store's front: backend choice, key rules, errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "objstore/objstore_internal.h"

#define OBJSTORE__KEY_MAX 512

int objstore__fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Segments of [A-Za-z0-9._-], none empty, none starting with '.', at most 512 bytes in all.
 * So no key climbs out of the local root ("..") or hides a file (".x"), and every key is a
 * URL path as it stands (nothing to escape, no dot segments for curl to fold). */
int objstore_key_valid(const char *key, size_t n)
{
    if (key == NULL || n == 0 || n > OBJSTORE__KEY_MAX)
        return 0;
    int seg_start = 1;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c == '/') {
            if (seg_start)
                return 0; /* empty segment: leading '/', "a//b" */
            seg_start = 1;
            continue;
        }
        if (seg_start && c == '.')
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
        seg_start = 0;
    }
    return !seg_start; /* a trailing '/' leaves an empty last segment */
}

static int objstore__check_key(const char *key, char *err, size_t errlen)
{
    if (key != NULL && objstore_key_valid(key, strnlen(key, OBJSTORE__KEY_MAX + 1)))
        return OBJSTORE_OK;
    return objstore__fail(OBJSTORE_EKEY, err, errlen,
                          "bad object key \"%.64s%s\": segments of [A-Za-z0-9._-] not starting with '.', "
                          "at most %d bytes",
                          key != NULL ? key : "(null)", key != NULL && strlen(key) > 64 ? "..." : "",
                          OBJSTORE__KEY_MAX);
}

objstore_t *objstore_open(const objstore_conf_t *conf, char *err, size_t errlen)
{
    CORE_ASSERT(conf != NULL);
    if (conf->backend == NULL || conf->backend[0] == '\0') {
        objstore__fail(0, err, errlen, "objstore: backend is required (\"local\" or \"s3\")");
        return NULL;
    }
    if (strcmp(conf->backend, "local") == 0)
        return objstore__local_open(conf, err, errlen);
    if (strcmp(conf->backend, "s3") == 0)
        return objstore__s3_open(conf, err, errlen);
    objstore__fail(0, err, errlen, "objstore: backend must be \"local\" or \"s3\", not \"%.32s\"",
                   conf->backend);
    return NULL;
}

void objstore_close(objstore_t *s)
{
    if (s != NULL)
        s->backend->close(s);
}

int objstore_put(objstore_t *s, const char *key, const void *data, size_t len, const char *content_type,
                 char *err, size_t errlen)
{
    CORE_ASSERT(s != NULL && (data != NULL || len == 0));
    int rc = objstore__check_key(key, err, errlen);
    if (rc != OBJSTORE_OK)
        return rc;
    return s->backend->put(s, key, data, len, content_type, err, errlen);
}

int objstore_get(objstore_t *s, const char *key, void **data, size_t *len, char *err, size_t errlen)
{
    CORE_ASSERT(s != NULL && data != NULL && len != NULL);
    *data = NULL;
    *len = 0;
    int rc = objstore__check_key(key, err, errlen);
    if (rc != OBJSTORE_OK)
        return rc;
    rc = s->backend->get(s, key, data, len, err, errlen);
    CORE_ASSERT(rc == OBJSTORE_OK || *data == NULL);
    return rc;
}

int objstore_delete(objstore_t *s, const char *key, char *err, size_t errlen)
{
    CORE_ASSERT(s != NULL);
    int rc = objstore__check_key(key, err, errlen);
    if (rc != OBJSTORE_OK)
        return rc;
    return s->backend->del(s, key, err, errlen);
}

const char *objstore_strerror(int rc)
{
    switch (rc) {
    case OBJSTORE_OK:
        return "ok";
    case OBJSTORE_EKEY:
        return "object key not acceptable";
    case OBJSTORE_ENOTFOUND:
        return "no such object";
    case OBJSTORE_EIO:
        return "object store I/O error";
    default:
        return "unknown object store error";
    }
}
