/* test_db_restart.c -- a db_t outlives a restart of its database server: calls fail while it is down
 * and succeed again after, with the same pool and no reopening. The fault is real: FerretDB is
 * stopped and started through deploy/local/stack.sh (the environment of the test stack). */
#include "db/db.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "log/log.h"

static void stack(const char *what)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "deploy/local/stack.sh %s ferretdb >/dev/null 2>&1", what);
    cr_assert_eq(system(cmd), 0, "stack.sh %s ferretdb failed (run from the repository root, test env)",
                 what);
}

static void ensure_started(void)
{
    if (system("deploy/local/stack.sh start ferretdb >/dev/null 2>&1") != 0)
        fprintf(stderr, "test_db_restart: could not restart FerretDB\n");
}

Test(db_restart, the_pool_recovers_after_the_server_restarts, .fini = ensure_started, .timeout = 60)
{
    const char *uri = getenv("TEST_MONGO_URI");
    cr_assert(uri != NULL && uri[0] != '\0', "TEST_MONGO_URI is not set (deploy/local/test-env.sh)");
    cr_assert_not_null(getenv("STACK_VAR"),
                       "STACK_VAR is not set: this test stops the test stack's FerretDB");
    log_init("test", LOG_ERROR);
    db_log_init();
    char err[256], id[CORE_UUID_BUFSZ];
    db_t *db = db_open(uri, "unit_tests", "test_db_restart", err, sizeof(err));
    cr_assert_not_null(db, "%s", err);
    cr_assert_eq(db_ping(db, err, sizeof(err)), 0, "%s", err);
    core_uuid(id);
    cr_assert_eq(db_message_mark(db, "restart-test", id), 0);

    stack("stop");
    uint64_t t0 = core_now_ms();
    cr_assert_neq(db_ping(db, err, sizeof(err)), 0, "ping answered with the server stopped");
    cr_assert_lt(core_now_ms() - t0, 5000, "a call while the server is down must fail fast");
    cr_assert_eq(db_message_seen(db, "restart-test", id), -1);

    stack("start");
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        ok = db_ping(db, err, sizeof(err)) == 0;
        if (!ok)
            core_sleep_ms(100, NULL);
    }
    cr_assert(ok, "the same pool never reached the restarted server: %s", err);
    cr_assert_eq(db_message_seen(db, "restart-test", id), 1, "the mark written before the restart is gone");
    db_close(db);
}
