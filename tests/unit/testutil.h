/* testutil.h -- small helpers more than one unit test needs (header-only: each test is its own binary). */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"

/* A loopback port nothing listens on: bound to port 0, read back, closed. */
static inline int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A database of the test's own on the server of TEST_MONGO_URI, named "<prefix>_<suffix>" (the
 * name goes to name, at least 48 bytes). Drop it with tu_db_drop. */
static inline db_t *tu_db_open(const char *prefix, const char *suffix, char *name, size_t namelen)
{
    const char *uri = getenv("TEST_MONGO_URI");
    cr_assert(uri != NULL && uri[0] != '\0', "TEST_MONGO_URI is not set");
    const char *slash = strrchr(uri, '/');
    cr_assert_not_null(slash, "TEST_MONGO_URI has no database: %s", uri);
    char u[512], err[256];
    snprintf(name, namelen, "%s_%s", prefix, suffix);
    snprintf(u, sizeof(u), "%.*s/%s", (int)(slash - uri), uri, name);
    db_log_init();
    db_t *db = db_open(u, name, "test", err, sizeof(err));
    cr_assert_not_null(db, "%s", err);
    return db;
}

/* Drops the database name and closes db. */
static inline void tu_db_drop(db_t *db, const char *name)
{
    mongoc_client_t *c = db_acquire(db);
    mongoc_database_t *d = mongoc_client_get_database(c, name);
    mongoc_database_drop(d, NULL);
    mongoc_database_destroy(d);
    db_release(db, c);
    db_close(db);
}

#endif
