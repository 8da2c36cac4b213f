/* test_objstore.c -- the object store: the local backend in a temp dir, the s3 backend against a
 * real versitygw (TEST_S3_*, started by deploy/local/stack.sh infra-up). */
#include "objstore/objstore.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../testutil.h"
#include "core/core.h"

static char err[512];

/* Bytes 0..255 over and over, from an offset: binary data full of NULs, different per seed. */
static unsigned char *test_blob(size_t len, unsigned seed)
{
    unsigned char *b = xmalloc(len > 0 ? len : 1);
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(i * 7 + seed);
    return b;
}

/* A random id for the keys of one test (hex, no dashes). */
static void test_id(char out[33])
{
    char uuid[CORE_UUID_BUFSZ];
    core_uuid(uuid);
    size_t j = 0;
    for (size_t i = 0; uuid[i] != '\0'; i++)
        if (uuid[i] != '-')
            out[j++] = uuid[i];
    out[j] = '\0';
}

static void assert_get(objstore_t *s, const char *key, const void *want, size_t want_len)
{
    void *data = NULL;
    size_t len = 0;
    int rc = objstore_get(s, key, &data, &len, err, sizeof(err));
    cr_assert_eq(rc, OBJSTORE_OK, "get %s: %d %s", key, rc, err);
    cr_assert_not_null(data);
    cr_assert_eq(len, want_len, "get %s: %zu bytes, want %zu", key, len, want_len);
    cr_assert(want_len == 0 || memcmp(data, want, want_len) == 0, "get %s: other bytes than put", key);
    free(data);
}

static void assert_not_found(objstore_t *s, const char *key)
{
    void *data = (void *)1;
    size_t len = 99;
    int rc = objstore_get(s, key, &data, &len, err, sizeof(err));
    cr_assert_eq(rc, OBJSTORE_ENOTFOUND, "get %s: %d (%s), want ENOTFOUND", key, rc, err);
    cr_assert_null(data);
    cr_assert_eq(len, 0);
}

/* ================================================================ local: fixture */

static char base[64];  /* mkdtemp: everything a local test writes is under it */
static char root[128]; /* the store's dir: base/store/media, missing at start */
static objstore_t *local;

static void local_setup(void)
{
    umask(022);
    strcpy(base, "/tmp/objstore-test-XXXXXX");
    cr_assert_not_null(mkdtemp(base));
    snprintf(root, sizeof(root), "%s/store/media", base);
    objstore_conf_t conf = {.backend = "local", .dir = root};
    local = objstore_open(&conf, err, sizeof(err));
    cr_assert_not_null(local, "%s", err);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void local_teardown(void)
{
    objstore_close(local);
    local = NULL;
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether root/rel exists ("" for root itself). */
static int exists_in_root(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s%s", root, rel[0] != '\0' ? "/" : "", rel);
    struct stat st;
    return lstat(path, &st) == 0;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0, "no %s", path);
    return st.st_mode & 07777;
}

/* Entries under base whose name contains needle (NULL: all entries but base itself). */
static const char *count_needle;
static int count_found;
static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag;
    if (ftw->level > 0 && (count_needle == NULL || strstr(path + ftw->base, count_needle) != NULL))
        count_found++;
    return 0;
}
static int count_under(const char *dir, const char *needle)
{
    count_needle = needle;
    count_found = 0;
    nftw(dir, count_entry, 16, FTW_PHYS);
    return count_found;
}

TestSuite(local, .init = local_setup, .fini = local_teardown, .timeout = 30);

/* ================================================================ local: objects */

Test(local, put_then_get_gives_the_same_bytes_in_a_file_named_by_the_key)
{
    size_t n = 100000;
    unsigned char *blob = test_blob(n, 0);
    cr_assert_eq(objstore_put(local, "m/3f0c/large.jpg", blob, n, "image/jpeg", err, sizeof(err)),
                 OBJSTORE_OK, "%s", err);
    assert_get(local, "m/3f0c/large.jpg", blob, n);

    /* dir was created with its parents; the file is where the key says, 0644 in 0755 dirs. */
    char path[256];
    snprintf(path, sizeof(path), "%s/m/3f0c/large.jpg", root);
    cr_assert_eq(mode_of(path), 0644);
    snprintf(path, sizeof(path), "%s/m/3f0c", root);
    cr_assert_eq(mode_of(path), 0755);
    cr_assert_eq(mode_of(root), 0755);
    free(blob);

    /* An empty object is an object. */
    cr_assert_eq(objstore_put(local, "empty", NULL, 0, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(local, "empty", "", 0);
}

Test(local, put_over_an_object_replaces_all_of_it)
{
    unsigned char *big = test_blob(5000, 1), *small = test_blob(10, 2);
    cr_assert_eq(objstore_put(local, "a/b.bin", big, 5000, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert_eq(objstore_put(local, "a/b.bin", small, 10, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(local, "a/b.bin", small, 10);
    cr_assert_eq(objstore_put(local, "a/b.bin", big, 5000, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(local, "a/b.bin", big, 5000);
    free(big);
    free(small);
}

Test(local, delete_is_idempotent_and_a_deleted_key_is_not_found)
{
    assert_not_found(local, "never/put"); /* not even the root exists yet */
    cr_assert_eq(objstore_delete(local, "never/put", err, sizeof(err)), OBJSTORE_OK, "%s", err);

    cr_assert_eq(objstore_put(local, "x/y", "hello", 5, "text/plain", err, sizeof(err)), OBJSTORE_OK, "%s",
                 err);
    cr_assert_eq(objstore_delete(local, "x/y", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_not_found(local, "x/y");
    cr_assert_eq(objstore_delete(local, "x/y", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_not_found(local, "x/y");
}

Test(local, a_directory_is_not_an_object)
{
    /* "a" is only the prefix of "a/b", as in S3: not found, and deleting it deletes nothing. */
    cr_assert_eq(objstore_put(local, "a/b", "1", 1, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_not_found(local, "a");
    cr_assert_eq(objstore_delete(local, "a", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(local, "a/b", "1", 1);
    /* Under an object, there is nothing: "a/b/c" is not found, and a put there fails. */
    assert_not_found(local, "a/b/c");
    cr_assert_eq(objstore_put(local, "a/b/c", "2", 1, NULL, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert(strstr(err, "a/b/c") != NULL, "%s", err);
}

/* ================================================================ local: keys */

Test(local, keys_outside_the_rules_are_refused_by_every_call)
{
    char long_key[514];
    memset(long_key, 'k', 513);
    long_key[513] = '\0';
    const char *bad[] = {"",      "../x",  "a/../../x", "a//b", ".hidden", "a/.hidden",   "/abs",
                         "a/",    "a/./b", "a b",       "a\\b", "a\nb",    "caf\xc3\xa9", "a?b",
                         "a%2fb", "..",    ".",         "/",    long_key};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(bad); i++) {
        void *data = NULL;
        size_t len = 0;
        err[0] = '\0';
        cr_assert_eq(objstore_put(local, bad[i], "x", 1, NULL, err, sizeof(err)), OBJSTORE_EKEY, "put \"%s\"",
                     bad[i]);
        cr_assert(strstr(err, "key") != NULL, "no words for \"%s\": %s", bad[i], err);
        cr_assert_eq(objstore_get(local, bad[i], &data, &len, err, sizeof(err)), OBJSTORE_EKEY, "get \"%s\"",
                     bad[i]);
        cr_assert_null(data);
        cr_assert_eq(objstore_delete(local, bad[i], err, sizeof(err)), OBJSTORE_EKEY, "delete \"%s\"",
                     bad[i]);
    }
    cr_assert_eq(objstore_get(local, NULL, &(void *){NULL}, &(size_t){0}, err, sizeof(err)), OBJSTORE_EKEY);
    /* Nothing was written anywhere, neither in the store nor next to it (../x). */
    cr_assert_eq(count_under(base, NULL), 0, "the bad keys left %d entries under %s", count_under(base, NULL),
                 base);

    /* 512 bytes is fine (in segments a file system takes: NAME_MAX is 255). */
    char key[513];
    memset(key, 'k', 512);
    key[512] = '\0';
    for (size_t i = 100; i < 512; i += 101)
        key[i] = '/';
    cr_assert_eq(objstore_put(local, key, "ok", 2, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(local, key, "ok", 2);
    const char *good[] = {"a", "A-Z_0.9", "m/x/a.jpg", "a.", "a..b", "-/_/0"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(good); i++)
        cr_assert_eq(objstore_put(local, good[i], "g", 1, NULL, err, sizeof(err)), OBJSTORE_OK, "\"%s\": %s",
                     good[i], err);
}

/* ================================================================ local: atomicity */

Test(local, puts_leave_no_temp_files_even_when_they_fail)
{
    unsigned char *blob = test_blob(70000, 3);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(objstore_put(local, "p/q/obj", blob, 70000 - (size_t)i, NULL, err, sizeof(err)),
                     OBJSTORE_OK, "%s", err);
    cr_assert_eq(objstore_put(local, "p/other", blob, 10, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    /* Fails at the rename: "p/q" is a directory. */
    cr_assert_eq(objstore_put(local, "p/q", blob, 10, NULL, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert(strstr(err, "rename") != NULL, "%s", err);
    cr_assert_eq(count_under(root, ".tmp."), 0, "temp files left in %s", root);
    cr_assert_eq(count_under(root, NULL), 4, "want p, p/q, p/q/obj, p/other; got %d entries",
                 count_under(root, NULL));
    free(blob);
}

typedef struct {
    objstore_t *s;
    const unsigned char *a, *b;
    size_t alen, blen;
    volatile int done;
    int torn, errors, reads;
} atomic_race_t;

static void *atomic_reader(void *arg)
{
    atomic_race_t *r = arg;
    char e[256];
    while (!r->done) {
        void *data;
        size_t len;
        if (objstore_get(r->s, "race/obj", &data, &len, e, sizeof(e)) != OBJSTORE_OK) {
            r->errors++;
            continue;
        }
        r->reads++;
        if (!((len == r->alen && memcmp(data, r->a, len) == 0) ||
              (len == r->blen && memcmp(data, r->b, len) == 0)))
            r->torn++;
        free(data);
    }
    return NULL;
}

Test(local, a_reader_sees_the_old_or_the_new_object_never_a_mix)
{
    atomic_race_t r = {.s = local, .alen = 200000, .blen = 70001};
    unsigned char *a = test_blob(r.alen, 4), *b = test_blob(r.blen, 5);
    r.a = a;
    r.b = b;
    cr_assert_eq(objstore_put(local, "race/obj", a, r.alen, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    pthread_t t;
    pthread_create(&t, NULL, atomic_reader, &r);
    for (int i = 0; i < 150; i++) {
        int even = i % 2 == 0;
        cr_assert_eq(
            objstore_put(local, "race/obj", even ? b : a, even ? r.blen : r.alen, NULL, err, sizeof(err)),
            OBJSTORE_OK, "%s", err);
    }
    r.done = 1;
    pthread_join(t, NULL);
    cr_assert_eq(r.torn, 0, "%d of %d reads saw a partial or mixed object", r.torn, r.reads);
    cr_assert_eq(r.errors, 0, "%d reads failed", r.errors);
    cr_assert_gt(r.reads, 0);
    free(a);
    free(b);
}

/* ================================================================ local: directories */

Test(local, delete_removes_the_directories_it_empties_but_not_the_root)
{
    cr_assert_eq(objstore_put(local, "a/b/c/x", "1", 1, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert_eq(objstore_put(local, "a/y", "2", 1, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert_eq(objstore_put(local, "top", "3", 1, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);

    cr_assert_eq(objstore_delete(local, "a/b/c/x", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert(!exists_in_root("a/b"), "a/b is empty and should be gone");
    cr_assert(exists_in_root("a/y"));

    cr_assert_eq(objstore_delete(local, "a/y", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert(!exists_in_root("a"), "a is empty and should be gone");
    cr_assert_eq(objstore_delete(local, "top", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert(exists_in_root(""), "the root must stay, even empty");
    cr_assert_eq(count_under(root, NULL), 0);

    /* And it comes back: a put re-creates what a delete removed. */
    cr_assert_eq(objstore_put(local, "a/b/c/x", "4", 1, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(local, "a/b/c/x", "4", 1);
}

typedef struct {
    objstore_t *s;
    int n;
    int failures;
    char first[1024];
} churn_t;

/* put, get, delete in a directory other threads also fill and empty: deletes remove the shared
 * directories while puts are about to write into them. */
static void *churn(void *arg)
{
    churn_t *c = arg;
    char key[64], e[256];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "shared/dir/t%d-%d", c->n, i);
        char val[16];
        int vlen = snprintf(val, sizeof(val), "%d-%d", c->n, i);
        void *data = NULL;
        size_t len = 0;
        int rc = objstore_put(c->s, key, val, (size_t)vlen, NULL, e, sizeof(e));
        if (rc == OBJSTORE_OK)
            rc = objstore_get(c->s, key, &data, &len, e, sizeof(e));
        if (rc == OBJSTORE_OK && (len != (size_t)vlen || memcmp(data, val, len) != 0)) {
            rc = -100;
            snprintf(e, sizeof(e), "%s: other bytes", key);
        }
        free(data);
        if (rc == OBJSTORE_OK)
            rc = objstore_delete(c->s, key, e, sizeof(e));
        if (rc != OBJSTORE_OK && c->failures++ == 0)
            snprintf(c->first, sizeof(c->first), "%s: %d %s", key, rc, e);
    }
    return NULL;
}

Test(local, concurrent_puts_and_deletes_share_directories_safely)
{
    churn_t c[4] = {{0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i].s = local;
        c[i].n = i;
        pthread_create(&t[i], NULL, churn, &c[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(c[i].failures, 0, "thread %d: %d failures, first: %s", i, c[i].failures, c[i].first);
    cr_assert_eq(count_under(root, NULL), 0, "everything was deleted, directories included");
}

/* ================================================================ open */

TestSuite(open, .timeout = 10);

static void assert_open_fails(const objstore_conf_t *conf, const char *words)
{
    err[0] = '\0';
    objstore_t *s = objstore_open(conf, err, sizeof(err));
    cr_assert_null(s, "opened; want \"%s\"", words);
    cr_assert(strstr(err, words) != NULL, "\"%s\" does not say \"%s\"", err, words);
}

Test(open, names_the_setting_at_fault)
{
    assert_open_fails(&(objstore_conf_t){.backend = NULL}, "backend is required");
    assert_open_fails(&(objstore_conf_t){.backend = "nfs"}, "backend must be");
    assert_open_fails(&(objstore_conf_t){.backend = "local"}, "local: dir is required");
    assert_open_fails(&(objstore_conf_t){.backend = "local", .dir = ""}, "local: dir is required");

    /* A good s3 conf with one setting changed at a time. */
    const objstore_conf_t good = {.backend = "s3",
                                  .endpoint = "http://127.0.0.1:1/",
                                  .bucket = "b",
                                  .region = "r",
                                  .access_key = "a",
                                  .secret_key = "s"};
    objstore_conf_t c;
    struct {
        const char **setting;
        const char *value, *words;
    } cases[] = {
        {&c.endpoint, NULL, "s3: endpoint is required"},
        {&c.endpoint, "127.0.0.1:7070", "s3: endpoint must start with"},
        {&c.endpoint, "http://h/x?y", "s3: endpoint must be a URL"},
        {&c.bucket, "", "s3: bucket is required"},
        {&c.bucket, "a/b", "s3: bucket must be"},
        {&c.region, NULL, "s3: region is required"},
        {&c.region, "us:east", "s3: region must be"},
        {&c.access_key, NULL, "s3: access_key is required"},
        {&c.access_key, "a\r\nx-evil: 1", "s3: access_key has"},
        {&c.secret_key, NULL, "s3: secret_key is required"},
        {&c.session_token, "t\r\nx-evil: 1", "s3: session_token has"},
    };
    for (size_t i = 0; i < CORE_ARRAY_SIZE(cases); i++) {
        c = good;
        *cases[i].setting = cases[i].value;
        assert_open_fails(&c, cases[i].words);
    }
    c = good;
    c.timeout_ms = -1;
    assert_open_fails(&c, "s3: timeout_ms");

    /* A good conf opens without any I/O: nothing listens there, and nothing is created. */
    objstore_t *s = objstore_open(&good, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    objstore_close(s);
    objstore_conf_t loc = {.backend = "local", .dir = "/nonexistent/objstore/test"};
    s = objstore_open(&loc, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    objstore_close(s);
    cr_assert(access("/nonexistent", F_OK) != 0);
    objstore_close(NULL);
}

Test(open, strerror_has_words_for_every_code)
{
    cr_assert_str_eq(objstore_strerror(OBJSTORE_OK), "ok");
    cr_assert(strstr(objstore_strerror(OBJSTORE_EKEY), "key") != NULL);
    cr_assert(strstr(objstore_strerror(OBJSTORE_ENOTFOUND), "no such") != NULL);
    cr_assert(strstr(objstore_strerror(OBJSTORE_EIO), "I/O") != NULL);
    cr_assert(strstr(objstore_strerror(-77), "unknown") != NULL);
}

/* ================================================================ s3: against versitygw */

static const char *s3_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(
        v != NULL && v[0] != '\0',
        "%s is not set: the s3 tests expect a running versitygw and TEST_S3_ENDPOINT, TEST_S3_BUCKET, "
        "TEST_S3_REGION, TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY (deploy/local/test.sh provides them; by "
        "hand: . deploy/local/test-env.sh && deploy/local/stack.sh infra-up)",
        name);
    return v;
}

static objstore_conf_t s3_conf(void)
{
    return (objstore_conf_t){
        .backend = "s3",
        .endpoint = s3_env("TEST_S3_ENDPOINT"),
        .bucket = s3_env("TEST_S3_BUCKET"),
        .region = s3_env("TEST_S3_REGION"),
        .access_key = s3_env("TEST_S3_ACCESS_KEY"),
        .secret_key = s3_env("TEST_S3_SECRET_KEY"),
        .timeout_ms = 10000,
    };
}

static objstore_t *s3_open(const objstore_conf_t *conf)
{
    objstore_t *s = objstore_open(conf, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    return s;
}

/* "t/<random>/<name>": each test's own keys, so reruns and stale objects do not matter. */
static char prefix[64];
static void s3_setup(void)
{
    char id[33];
    test_id(id);
    snprintf(prefix, sizeof(prefix), "t/%s", id);
}

static char *s3_key(const char *name)
{
    return xasprintf("%s/%s", prefix, name);
}

TestSuite(s3, .init = s3_setup, .timeout = 60);

Test(s3, put_then_get_round_trips_binary_data)
{
    objstore_conf_t conf = s3_conf();
    objstore_t *s = s3_open(&conf);
    char *key = s3_key("m/a.jpg"), *empty = s3_key("empty"), *large = s3_key("large.bin");

    size_t n = 300000;
    unsigned char *blob = test_blob(n, 6);
    cr_assert_eq(objstore_put(s, key, blob, n, "image/jpeg", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(s, key, blob, n);

    cr_assert_eq(objstore_put(s, empty, NULL, 0, NULL, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(s, empty, "", 0);

    /* Large enough for curl's Expect: 100-continue, which versitygw answers. */
    size_t big = 3u << 20;
    unsigned char *blob2 = test_blob(big, 7);
    cr_assert_eq(objstore_put(s, large, blob2, big, "application/octet-stream", err, sizeof(err)),
                 OBJSTORE_OK, "%s", err);
    assert_get(s, large, blob2, big);

    const char *keys[] = {key, empty, large};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(keys); i++)
        cr_assert_eq(objstore_delete(s, keys[i], err, sizeof(err)), OBJSTORE_OK, "%s", err);
    free(blob);
    free(blob2);
    free(key);
    free(empty);
    free(large);
    objstore_close(s);
}

Test(s3, put_over_an_object_replaces_it)
{
    objstore_conf_t conf = s3_conf();
    objstore_t *s = s3_open(&conf);
    char *key = s3_key("over");
    unsigned char *big = test_blob(50000, 8), *small = test_blob(7, 9);
    cr_assert_eq(objstore_put(s, key, big, 50000, "image/webp", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert_eq(objstore_put(s, key, small, 7, "image/webp", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_get(s, key, small, 7);
    cr_assert_eq(objstore_delete(s, key, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    free(big);
    free(small);
    free(key);
    objstore_close(s);
}

Test(s3, delete_twice_is_fine_and_a_missing_key_is_not_found)
{
    objstore_conf_t conf = s3_conf();
    objstore_t *s = s3_open(&conf);
    char *key = s3_key("gone/soon.txt");
    assert_not_found(s, key);
    cr_assert(strstr(err, "404") != NULL && strstr(err, "NoSuchKey") != NULL, "%s", err);
    cr_assert_eq(objstore_put(s, key, "bye", 3, "text/plain", err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert_eq(objstore_delete(s, key, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    cr_assert_eq(objstore_delete(s, key, err, sizeof(err)), OBJSTORE_OK, "%s", err);
    assert_not_found(s, key);
    free(key);
    objstore_close(s);
}

Test(s3, a_wrong_secret_is_an_io_error_naming_the_s3_code)
{
    objstore_conf_t conf = s3_conf();
    conf.secret_key = "not-the-secret";
    objstore_t *s = s3_open(&conf);
    char *key = s3_key("denied.jpg"), *want = xasprintf("s3 PUT %s: 403 SignatureDoesNotMatch", key);
    cr_assert_eq(objstore_put(s, key, "x", 1, "image/jpeg", err, sizeof(err)), OBJSTORE_EIO);
    cr_assert_str_eq(err, want);
    void *data = NULL;
    size_t len = 0;
    cr_assert_eq(objstore_get(s, key, &data, &len, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert(strstr(err, "SignatureDoesNotMatch") != NULL, "%s", err);
    cr_assert_null(data);
    cr_assert_eq(objstore_delete(s, key, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert(strstr(err, "s3 DELETE") != NULL && strstr(err, "403") != NULL, "%s", err);
    free(key);
    free(want);
    objstore_close(s);
}

Test(s3, a_missing_bucket_is_an_io_error_not_a_missing_key)
{
    objstore_conf_t conf = s3_conf();
    char bucket[64], id[33];
    test_id(id);
    snprintf(bucket, sizeof(bucket), "no-such-bucket-%.12s", id);
    conf.bucket = bucket;
    objstore_t *s = s3_open(&conf);
    void *data = NULL;
    size_t len = 0;
    cr_assert_eq(objstore_get(s, "k", &data, &len, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert_str_eq(err, "s3 GET k: 404 NoSuchBucket");
    cr_assert_eq(objstore_delete(s, "k", err, sizeof(err)), OBJSTORE_EIO);
    cr_assert_str_eq(err, "s3 DELETE k: 404 NoSuchBucket");
    objstore_close(s);
}

Test(s3, a_wrong_region_and_a_session_token_reach_the_server)
{
    /* Both are signed or sent by us and judged by the server: versitygw wants us-east-1, and
     * in single-account mode knows no session tokens. */
    objstore_conf_t conf = s3_conf();
    conf.region = "eu-west-3";
    objstore_t *s = s3_open(&conf);
    cr_assert_eq(objstore_put(s, "k", "x", 1, NULL, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert_str_eq(err, "s3 PUT k: 400 AuthorizationHeaderMalformed");
    objstore_close(s);

    conf = s3_conf();
    conf.session_token = "FwoGZXIvYXdzEXAMPLETOKEN";
    s = s3_open(&conf);
    cr_assert_eq(objstore_put(s, "k", "x", 1, NULL, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert_str_eq(err, "s3 PUT k: 400 InvalidToken");
    objstore_close(s);
}

Test(s3, content_types_with_control_characters_are_refused)
{
    objstore_conf_t conf = s3_conf();
    objstore_t *s = s3_open(&conf);
    cr_assert_eq(objstore_put(s, "k", "x", 1, "image/jpeg\r\nx-amz-acl: public-read", err, sizeof(err)),
                 OBJSTORE_EIO);
    cr_assert(strstr(err, "content type") != NULL, "%s", err);
    objstore_close(s);
}

Test(s3, bad_keys_are_refused_before_any_request)
{
    objstore_conf_t conf = {.backend = "s3",
                            .endpoint = "http://127.0.0.1:1",
                            .bucket = "b",
                            .region = "r",
                            .access_key = "a",
                            .secret_key = "s",
                            .timeout_ms = 100};
    objstore_t *s = s3_open(&conf);
    cr_assert_eq(objstore_put(s, "../x", "x", 1, NULL, err, sizeof(err)), OBJSTORE_EKEY);
    cr_assert_eq(objstore_delete(s, "a//b", err, sizeof(err)), OBJSTORE_EKEY);
    cr_assert_eq(objstore_get(s, ".hidden", &(void *){NULL}, &(size_t){0}, err, sizeof(err)), OBJSTORE_EKEY);
    objstore_close(s);
}

/* ================================================================ s3: no server */

Test(s3, an_endpoint_nobody_listens_on_fails_at_once)
{
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", tu_free_port());
    objstore_conf_t conf = {.backend = "s3",
                            .endpoint = endpoint,
                            .bucket = "b",
                            .region = "us-east-1",
                            .access_key = "a",
                            .secret_key = "s",
                            .timeout_ms = 2000};
    objstore_t *s = s3_open(&conf);
    uint64_t t0 = core_now_ms();
    cr_assert_eq(objstore_put(s, "m/x", "x", 1, NULL, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert(strncmp(err, "s3 PUT m/x: ", 12) == 0 && strstr(err, "onnect") != NULL, "%s", err);
    void *data = NULL;
    size_t len = 0;
    cr_assert_eq(objstore_get(s, "m/x", &data, &len, err, sizeof(err)), OBJSTORE_EIO);
    cr_assert_null(data);
    cr_assert_eq(objstore_delete(s, "m/x", err, sizeof(err)), OBJSTORE_EIO);
    cr_assert_lt(core_now_ms() - t0, 2000, "connection refused should not wait for the timeout");
    objstore_close(s);
}

Test(s3, a_server_that_never_answers_times_out)
{
    /* Listens, so the kernel accepts the connection, but never reads nor answers. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 8), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(sa.sin_port));

    objstore_conf_t conf = {.backend = "s3",
                            .endpoint = endpoint,
                            .bucket = "b",
                            .region = "us-east-1",
                            .access_key = "a",
                            .secret_key = "s",
                            .timeout_ms = 400};
    objstore_t *s = s3_open(&conf);
    uint64_t t0 = core_now_ms();
    void *data = NULL;
    size_t len = 0;
    cr_assert_eq(objstore_get(s, "m/x", &data, &len, err, sizeof(err)), OBJSTORE_EIO);
    uint64_t took = core_now_ms() - t0;
    cr_assert(strncmp(err, "s3 GET m/x: ", 12) == 0 && strstr(err, "timed out") != NULL, "%s", err);
    cr_assert_geq(took, 350, "gave up after %llu ms, before the timeout", (unsigned long long)took);
    cr_assert_lt(took, 2500, "took %llu ms for a 400 ms timeout", (unsigned long long)took);

    t0 = core_now_ms();
    cr_assert_eq(objstore_put(s, "m/x", "x", 1, NULL, err, sizeof(err)), OBJSTORE_EIO);
    took = core_now_ms() - t0;
    cr_assert(strstr(err, "timed out") != NULL, "%s", err);
    cr_assert_lt(took, 2500, "took %llu ms for a 400 ms timeout", (unsigned long long)took);
    objstore_close(s);
    close(fd);
}

/* ================================================================ s3: threads */

typedef struct {
    objstore_t *s;
    int n;
    int failures;
    char first[1024];
} s3_worker_t;

static void *s3_worker(void *arg)
{
    s3_worker_t *w = arg;
    char e[512], name[64];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "thread%d/%d.bin", w->n, i);
        char *key = s3_key(name);
        size_t n = 1000 + (size_t)(w->n * 20 + i) * 997;
        unsigned char *blob = test_blob(n, (unsigned)(w->n * 31 + i));
        void *data = NULL;
        size_t len = 0;
        int rc = objstore_put(w->s, key, blob, n, "application/octet-stream", e, sizeof(e));
        if (rc == OBJSTORE_OK)
            rc = objstore_get(w->s, key, &data, &len, e, sizeof(e));
        if (rc == OBJSTORE_OK && (len != n || memcmp(data, blob, n) != 0)) {
            rc = -100;
            snprintf(e, sizeof(e), "other bytes (%zu, want %zu)", len, n);
        }
        if (rc == OBJSTORE_OK && i % 2 == 0)
            rc = objstore_delete(w->s, key, e, sizeof(e));
        if (rc != OBJSTORE_OK && w->failures++ == 0)
            snprintf(w->first, sizeof(w->first), "%s: %d %s", key, rc, e);
        free(data);
        free(blob);
        free(key);
    }
    return NULL;
}

Test(s3, four_threads_share_one_store)
{
    objstore_conf_t conf = s3_conf();
    objstore_t *s = s3_open(&conf);
    s3_worker_t w[4] = {{0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i].s = s;
        w[i].n = i;
        pthread_create(&t[i], NULL, s3_worker, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(w[i].failures, 0, "thread %d: %d failures, first: %s", i, w[i].failures, w[i].first);

    /* What the threads kept is there, what they deleted is not. */
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof(name), "thread%d/1.bin", i);
        char *kept = s3_key(name);
        size_t n = 1000 + (size_t)(i * 20 + 1) * 997;
        unsigned char *blob = test_blob(n, (unsigned)(i * 31 + 1));
        assert_get(s, kept, blob, n);
        snprintf(name, sizeof(name), "thread%d/0.bin", i);
        char *deleted = s3_key(name);
        assert_not_found(s, deleted);
        free(blob);
        free(kept);
        free(deleted);
    }
    objstore_close(s);
}
