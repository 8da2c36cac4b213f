/* rpc.c -- auth.* method dispatch (the reply and request helpers are libs/rpc). */
#include <string.h>

#include "auth.h"
#include "core/core.h"

static const struct {
    const char *method;
    auth_handler_fn fn;
    int needs_user;
} rpc__methods[] = {
    {"auth.register", accounts_register, 0},
    {"auth.login", accounts_login, 0},
    {"auth.refresh", tokens_refresh, 0},
    {"auth.logout", tokens_logout, 0},
    {"auth.me_get", accounts_me_get, 1},
    {"auth.me_update", accounts_me_update, 1},
    {"auth.me_delete", accounts_me_delete, 1},
    {"auth.user_get", graph_user_get, 0},
    {"auth.followers", graph_followers, 0},
    {"auth.following", graph_following, 0},
    {"auth.follow", graph_follow, 1},
    {"auth.unfollow", graph_unfollow, 1},
    {"auth.block", graph_block, 1},
    {"auth.unblock", graph_unblock, 1},
    {"auth.device_add", devices_add, 1},
    {"auth.device_remove", devices_remove, 1},
    {"auth.users_get", accounts_users_get, 0}, /* services only: no gateway route */
};

void auth_rpc(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    auth_t *a = ud;
    const char *method = req->type != NULL ? req->type : "";
    for (size_t i = 0; i < CORE_ARRAY_SIZE(rpc__methods); i++) {
        if (strcmp(rpc__methods[i].method, method) != 0)
            continue;
        if (rpc__methods[i].needs_user && (req->user_id == NULL || req->user_id[0] == '\0')) {
            rpc_unauthorized(reply, "missing-token", "this route needs an access token");
            return;
        }
        rpc__methods[i].fn(a, req, reply);
        return;
    }
    /* unknown method: the skeleton answers 404 */
}
