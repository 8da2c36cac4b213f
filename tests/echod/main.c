/* echod -- a test daemon on the svc skeleton: answers echo.* RPCs at once (or after a delay).
 *
 * It stands in for a product daemon where the foundation needs one: the gateway's RPC
 * round trip, readiness pings, broker-restart recovery and the gateway benchmark.
 *   echo.ping   answered by the skeleton
 *   echo.echo   200 {"method","user_id","request_id","params","query","body"}
 *   echo.sleep  waits ?ms=N (at most 10000) first, then answers like echo.echo
 *   echo.status answers with the status in ?status=NNN and a problem+json body */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "problem/problem.h"
#include "svc/svc.h"

static struct {
    svc_conf_t svc;
} conf;

static const cfg_var_t conf_table[] = {
    SVC_CFG_COMMON(conf.svc, "127.0.0.1:9199"),
    {0},
};

static long query_long(const char *query, const char *key, long def)
{
    size_t klen = strlen(key);
    for (const char *p = query; p != NULL && *p != '\0';) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=')
            return strtol(p + klen + 1, NULL, 10);
        p = strchr(p, '&');
        if (p != NULL)
            p++;
    }
    return def;
}

static void echo_rpc(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    (void)ud;
    const char *method = req->type != NULL ? req->type : "";
    if (strcmp(method, "echo.status") == 0) {
        long status = query_long(req->query, "status", 500);
        reply->status = status >= 200 && status <= 599 ? (int)status : 500;
        reply->content_type = xstrdup(PROBLEM_CONTENT_TYPE);
        reply->body = problem_json(reply->status, NULL, "status requested by the caller", NULL);
        reply->body_len = strlen(reply->body);
        if (reply->status == 429)
            reply->headers_json = xstrdup("{\"retry-after\":\"7\"}");
        return;
    }
    if (strcmp(method, "echo.sleep") == 0) {
        long ms = query_long(req->query, "ms", 0);
        core_sleep_ms((unsigned)(ms < 0 ? 0 : ms > 10000 ? 10000 : ms), NULL);
    } else if (strcmp(method, "echo.echo") != 0) {
        return; /* unknown method: the skeleton answers 404 */
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "method", method);
    if (req->user_id != NULL)
        cJSON_AddStringToObject(out, "user_id", req->user_id);
    else
        cJSON_AddNullToObject(out, "user_id");
    cJSON_AddStringToObject(out, "request_id", req->request_id != NULL ? req->request_id : "");
    cJSON *params = req->params != NULL ? json_parse_object(req->params, strlen(req->params), 65536, 8, NULL) : NULL;
    cJSON_AddItemToObject(out, "params", params != NULL ? params : cJSON_CreateObject());
    cJSON_AddStringToObject(out, "query", req->query != NULL ? req->query : "");
    char *body = xstrndup(req->body, req->body_len);
    cJSON_AddStringToObject(out, "body", json_utf8_valid(body, req->body_len) ? body : "");
    cJSON_AddNumberToObject(out, "body_len", (double)req->body_len);
    free(body);
    reply->status = 200;
    reply->body = json_print(out);
    reply->body_len = strlen(reply->body);
    cJSON_Delete(out);
}

static void setup_worker(svc_t *svc, mq_t *mq, void *ud)
{
    (void)ud;
    svc_serve_rpc(svc, mq, echo_rpc, NULL);
}

int main(int argc, char **argv)
{
    static const svc_def_t def = {
        .name = "echo",
        .summary = "echod: test daemon answering echo.* RPCs",
        .setup_worker = setup_worker,
    };
    return svc_main(argc, argv, &def, conf_table, &conf.svc);
}
