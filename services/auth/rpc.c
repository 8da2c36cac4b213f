/* rpc.c -- auth.* method dispatch (the reply and request helpers are libs/rpc). */
#include <string.h>

#include "auth.h"
#include "core/core.h"

static const struct {
    rpc_method_t m;
    auth_handler_fn fn;
} rpc__methods[] = {
    {{"auth.register", 0}, accounts_register},
    {{"auth.login", 0}, accounts_login},
    {{"auth.refresh", 0}, tokens_refresh},
    {{"auth.logout", 0}, tokens_logout},
    {{"auth.me_get", 1}, accounts_me_get},
    {{"auth.me_update", 1}, accounts_me_update},
    {{"auth.me_delete", 1}, accounts_me_delete},
    {{"auth.user_get", 0}, graph_user_get},
    {{"auth.followers", 0}, graph_followers},
    {{"auth.following", 0}, graph_following},
    {{"auth.follow", 1}, graph_follow},
    {{"auth.unfollow", 1}, graph_unfollow},
    {{"auth.block", 1}, graph_block},
    {{"auth.unblock", 1}, graph_unblock},
    {{"auth.device_add", 1}, devices_add},
    {{"auth.device_remove", 1}, devices_remove},
    {{"auth.users_get", 0}, accounts_users_get}, /* services only: no gateway route */
};

void auth_rpc(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    long i = rpc_method_find(rpc__methods, CORE_ARRAY_SIZE(rpc__methods), sizeof(rpc__methods[0]), req, reply);
    if (i >= 0) /* else unknown (the skeleton answers 404) or answered 401 */
        rpc__methods[i].fn(ud, req, reply);
}
