/* objstore.h -- where media files live: one small interface, a local directory or S3. */
#ifndef OBJSTORE_H
#define OBJSTORE_H

#include <stddef.h>

typedef struct objstore objstore_t;

typedef struct {
    const char *backend; /* "local" or "s3" */
    /* local */
    const char *dir; /* created if missing */
    /* s3 (path-style requests to endpoint/bucket/key, signed with AWS SigV4 by libcurl);
     * every one required but session_token and timeout_ms */
    const char *endpoint; /* "https://s3.eu-west-1.amazonaws.com" or "http://127.0.0.1:7070" */
    const char *bucket, *region;
    const char *access_key, *secret_key, *session_token; /* session_token may be NULL */
    long timeout_ms;                                     /* per request; 0 means 30 s */
} objstore_conf_t;

/* Opens a store. The strings of conf are copied. Returns NULL with a message in err naming the
 * setting at fault ("s3: bucket is required"). Does no I/O. */
objstore_t *objstore_open(const objstore_conf_t *conf, char *err, size_t errlen);
/* Frees the store (NULL is fine). No call on it may still be running. */
void objstore_close(objstore_t *s);

/* 1 if the len bytes at key form an acceptable key (below), else 0. The gateway checks /media/
 * paths with it. */
int objstore_key_valid(const char *key, size_t len);

/* Keys are relative paths of segments [A-Za-z0-9._-] not starting with '.', at most 512 bytes:
 * "m/3f0c.../large.jpg". Every call checks the key and fails with OBJSTORE_EKEY otherwise. */
enum {
    OBJSTORE_OK = 0,
    OBJSTORE_EKEY = -1,      /* key not acceptable */
    OBJSTORE_ENOTFOUND = -2, /* get of a key that is not there */
    OBJSTORE_EIO = -3,       /* disk, network, or the server said no (err says what) */
};

/* Stores data under key, replacing any object there, atomically (a reader never sees half an
 * object: local writes a temp file and renames it). content_type is sent to S3. Thread-safe. */
int objstore_put(objstore_t *s, const char *key, const void *data, size_t len, const char *content_type,
                 char *err, size_t errlen);
/* Reads the object into *data (malloc'd, caller frees) and *len. Thread-safe. */
int objstore_get(objstore_t *s, const char *key, void **data, size_t *len, char *err, size_t errlen);
/* Deletes the object; deleting a missing key is OK (idempotent). Thread-safe. */
int objstore_delete(objstore_t *s, const char *key, char *err, size_t errlen);

const char *objstore_strerror(int rc);

#endif
