/* local.c -- the object store in a local directory: one file per key, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "objstore/objstore_internal.h"

/* How often a put makes its directory and tries to create its temp file there, when concurrent
 * deletes keep removing that directory (empty) between the two. */
#define LOCAL__CREATE_ATTEMPTS 16

typedef struct {
    struct objstore base;
    char *root; /* without trailing '/': "" for the file system root */
    size_t root_len;
} local_t;

static int local__fail_errno(int e, char *err, size_t errlen, const char *op, const char *key,
                             const char *what)
{
    char buf[128];
    return objstore__fail(OBJSTORE_EIO, err, errlen, "local %s %s: %s: %s", op, key, what,
                          strerror_r(e, buf, sizeof(buf)));
}

/* mkdir -p: creates dir and its missing parents (0755, less the umask). dir is modified while
 * it runs and restored. Returns 0, or -1 with errno. */
static int local__mkdirs(char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return -1;
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return -1;
    *slash = '\0';
    int r = local__mkdirs(dir);
    *slash = '/';
    if (r != 0)
        return -1;
    return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* fsync of the directory holding path, so a rename in it survives a crash. */
static int local__sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    int e = errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    errno = e;
    return r;
}

/* ================================================================ put */

/* Writes <path>.tmp.<uuid>, fsyncs it and renames it over path: a reader sees the old object
 * or the new one, never a part, and a crash leaves at worst a temp file. */
static int local__put(objstore_t *base, const char *key, const void *data, size_t len,
                      const char *content_type, char *err, size_t errlen)
{
    local_t *s = (local_t *)base;
    (void)content_type; /* files carry no type; readers go by the name */
    char uuid[CORE_UUID_BUFSZ];
    core_uuid(uuid);
    char *path = xasprintf("%s/%s", s->root, key);
    char *tmp = xasprintf("%s.tmp.%s", path, uuid);
    int fd = -1, rc = OBJSTORE_EIO, created = 0;

    for (int attempt = 1;; attempt++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != ENOENT || attempt == LOCAL__CREATE_ATTEMPTS)
            break;
        /* Its directory is missing: make it. A concurrent delete may remove (as empty) what we
         * make before we create our file in it; ENOENT then means: again. */
        char *dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));
        int r = local__mkdirs(dir);
        int e = errno;
        free(dir);
        if (r != 0 && e != ENOENT) {
            rc = local__fail_errno(e, err, errlen, "put", key, "mkdir");
            goto out;
        }
    }
    if (fd < 0) {
        rc = local__fail_errno(errno, err, errlen, "put", key, "create");
        goto out;
    }
    created = 1;

    const char *p = data;
    for (size_t left = len; left > 0;) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = local__fail_errno(errno, err, errlen, "put", key, "write");
            goto out;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = local__fail_errno(errno, err, errlen, "put", key, "fsync");
        goto out;
    }
    int r = close(fd);
    fd = -1;
    if (r != 0) {
        rc = local__fail_errno(errno, err, errlen, "put", key, "close");
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = local__fail_errno(errno, err, errlen, "put", key, "rename");
        goto out;
    }
    created = 0;
    if (local__sync_parent(path) != 0) {
        rc = local__fail_errno(errno, err, errlen, "put", key, "fsync of its directory");
        goto out;
    }
    rc = OBJSTORE_OK;

out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

/* ================================================================ get */

static int local__get(objstore_t *base, const char *key, void **data, size_t *len, char *err, size_t errlen)
{
    local_t *s = (local_t *)base;
    char *path = xasprintf("%s/%s", s->root, key);
    char *buf = NULL;
    int rc = OBJSTORE_EIO;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = objstore__fail(OBJSTORE_ENOTFOUND, err, errlen, "local get %s: no such object", key);
        else
            rc = local__fail_errno(errno, err, errlen, "get", key, "open");
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = local__fail_errno(errno, err, errlen, "get", key, "fstat");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        /* A directory: the prefix of other keys, not an object (as in S3). */
        rc = objstore__fail(OBJSTORE_ENOTFOUND, err, errlen, "local get %s: no such object", key);
        goto out;
    }

    /* Up to end of file rather than st_size bytes, in case someone edits it by hand meanwhile
     * (our own puts never write into a file a reader can open). */
    size_t cap = (size_t)st.st_size + 1, used = 0;
    buf = xmalloc(cap);
    for (;;) {
        if (used == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = local__fail_errno(errno, err, errlen, "get", key, "read");
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *data = buf;
    *len = used;
    buf = NULL;
    rc = OBJSTORE_OK;

out:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return rc;
}

/* ================================================================ delete */

/* Unlinks the file, then removes the directories this left empty, up to the root (which stays).
 * A put racing with this into one of those directories re-creates it (LOCAL__CREATE_ATTEMPTS). */
static int local__delete(objstore_t *base, const char *key, char *err, size_t errlen)
{
    local_t *s = (local_t *)base;
    char *path = xasprintf("%s/%s", s->root, key);
    int rc = OBJSTORE_OK;

    if (unlink(path) != 0) {
        /* ENOENT, ENOTDIR: nothing there. EISDIR: only other keys under this name. */
        if (errno != ENOENT && errno != ENOTDIR && errno != EISDIR)
            rc = local__fail_errno(errno, err, errlen, "delete", key, "unlink");
        goto out;
    }
    char *slash;
    while ((slash = strrchr(path, '/')) != NULL && slash > path + s->root_len) {
        *slash = '\0';
        if (rmdir(path) != 0)
            break; /* not empty (ENOTEMPTY), or gone already: either way, done */
    }

out:
    free(path);
    return rc;
}

/* ================================================================ open, close */

static void local__close(objstore_t *base)
{
    local_t *s = (local_t *)base;
    free(s->root);
    free(s);
}

static const objstore__backend_t local__backend = {
    .put = local__put,
    .get = local__get,
    .del = local__delete,
    .close = local__close,
};

objstore_t *objstore__local_open(const objstore_conf_t *conf, char *err, size_t errlen)
{
    if (conf->dir == NULL || conf->dir[0] == '\0') {
        objstore__fail(0, err, errlen, "local: dir is required");
        return NULL;
    }
    local_t *s = xcalloc(1, sizeof(*s));
    s->base.backend = &local__backend;
    s->root = xstrdup(conf->dir);
    s->root_len = strlen(s->root);
    while (s->root_len > 0 && s->root[s->root_len - 1] == '/')
        s->root[--s->root_len] = '\0';
    return &s->base;
}
