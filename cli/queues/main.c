/* main.c -- queues: the operators' view of the suite's RabbitMQ queues (list, peek at and replay dead
 * letters); arguments, configuration from the environment, and the exit status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg/cfg.h"
#include "core/core.h"
#include "queues.h"

#define QUEUES_COUNT_MAX 100000

static struct {
    const char *api_url;
    const char *api_user;
    char *api_password;
    const char *vhost;
    const char *amqp_url;
    long timeout_ms;
} conf;

static const cfg_var_t conf_table[] = {
    {"QUEUES_API_URL", CFG_STRING, "http://127.0.0.1:15672/api", "RabbitMQ management HTTP API",
     &conf.api_url},
    {"QUEUES_API_USER", CFG_STRING, "guest",
     "management API user (tag management; read permission on the vhost for peek)", &conf.api_user},
    {"QUEUES_API_PASSWORD", CFG_SECRET, "guest", "its password", &conf.api_password},
    {"QUEUES_VHOST", CFG_STRING, "/", "the suite's vhost", &conf.vhost},
    {"AMQP_URL", CFG_STRING, "amqp://guest:guest@127.0.0.1:5672",
     "RabbitMQ for replay (its vhost must be QUEUES_VHOST; the user needs read on the dlq, write on the "
     "exchange)",
     &conf.amqp_url},
    {"QUEUES_TIMEOUT", CFG_MS, "10s", "one HTTP request; one broker operation or publisher confirm",
     &conf.timeout_ms, 100, 600000},
    {0},
};

static const char usage[] =
    "Usage: queues [--json] list\n"
    "       queues [--json] peek <queue>.dlq [-n N]          (N: 10 by default)\n"
    "       queues [--json] replay <queue>.dlq [-n N | --all] [--to-queue]   (N: 1 by default)\n"
    "       queues --help\n"
    "\n"
    "list    every queue of the vhost: messages ready and unacked, consumers, publish, deliver and ack\n"
    "        rates per second, its dead letters (the depth of <queue>.dlq) and what it is for\n"
    "peek    shows dead letters without taking them: headers, x-death, where a replay sends them, body\n"
    "replay  moves dead letters back to their original exchange and routing key, one at a time with\n"
    "        publisher confirms; the dlq's copy is acked only once the broker has the new one.\n"
    "        --to-queue sends them back to the queue that dead-lettered them only (default exchange,\n"
    "        x-routing-key keeps the original key), not to every queue bound to their routing key\n"
    "\n"
    "Exit status: 0 done, 1 failed (unreachable, error answers), 2 refused (usage, configuration, not a\n"
    "dead-letter queue, no such queue, a dead letter whose way back is unknown or no longer routed).\n";

static void print_help(void)
{
    fputs(usage, stdout);
    printf("\nConfiguration is read from the environment:\n\n");
    for (const cfg_var_t *v = conf_table; v->name != NULL; v++) {
        printf("  %s  (default: %s)\n      %s\n", v->name, v->def, v->help);
        if (v->type == CFG_SECRET)
            printf("      Or set %s_FILE to a file holding the value.\n", v->name);
    }
}

/* ================================================================ helpers of every command */

int queues_check_dlq(const char *command, const char *name, char *err, size_t errlen)
{
    if (catalog_is_dlq(name))
        return QUEUES_EXIT_OK;
    snprintf(err, errlen, "%s: %s is not a dead-letter queue (its name does not end in %s)", command, name,
             QUEUES_DLQ_SUFFIX);
    return QUEUES_EXIT_REFUSED;
}

void queues_print_escaped(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\')
            fputs("\\\\", out);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c == '\r')
            fputs("\\r", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

/* ================================================================ arguments */

typedef struct {
    const char *command;
    const char *queue;
    long count; /* 0: the command's default; -1: --all */
    int json, to_queue;
} args_t;

static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > QUEUES_COUNT_MAX)
        return -1;
    *out = v;
    return 0;
}

/* 0, or -1 with err filled. */
static int parse_args(int argc, char **argv, args_t *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    int all = 0, n_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if (strcmp(s, "--all") == 0) {
            all = 1;
        } else if (strcmp(s, "--to-queue") == 0) {
            a->to_queue = 1;
        } else if (strncmp(s, "-n", 2) == 0) { /* -n N or -nN */
            const char *v = s[2] != '\0' ? s + 2 : i + 1 < argc ? argv[++i] : "";
            if (parse_count(v, &a->count) != 0) {
                snprintf(err, errlen, "-n takes a number from 1 to %d, not '%s'", QUEUES_COUNT_MAX, v);
                return -1;
            }
            n_given = 1;
        } else if (s[0] == '-' && s[1] != '\0') {
            snprintf(err, errlen, "unknown option %s (try queues --help)", s);
            return -1;
        } else if (a->command == NULL) {
            a->command = s;
        } else if (a->queue == NULL) {
            a->queue = s;
        } else {
            snprintf(err, errlen, "one queue at a time: what is '%s'? (try queues --help)", s);
            return -1;
        }
    }
    if (a->command == NULL) {
        snprintf(err, errlen, "which command: list, peek or replay? (try queues --help)");
        return -1;
    }
    int is_list = strcmp(a->command, "list") == 0, is_peek = strcmp(a->command, "peek") == 0;
    int is_replay = strcmp(a->command, "replay") == 0;
    if (!is_list && !is_peek && !is_replay) {
        snprintf(err, errlen, "unknown command '%s': list, peek or replay (try queues --help)", a->command);
        return -1;
    }
    if (is_list && (a->queue != NULL || n_given || all || a->to_queue)) {
        snprintf(err, errlen, "list takes no queue and no -n, --all or --to-queue");
        return -1;
    }
    if (!is_list && a->queue == NULL) {
        snprintf(err, errlen, "%s needs a dead-letter queue: queues %s <queue>.dlq", a->command, a->command);
        return -1;
    }
    if (is_peek && (all || a->to_queue)) {
        snprintf(err, errlen, "peek takes -n N, not --all or --to-queue");
        return -1;
    }
    if (all && n_given) {
        snprintf(err, errlen, "replay takes -n N or --all, not both");
        return -1;
    }
    if (all)
        a->count = -1;
    else if (a->count == 0)
        a->count = is_peek ? 10 : 1;
    return 0;
}

/* ================================================================ main */

int main(int argc, char **argv)
{
    char err[1024] = "";
    args_t args;
    queues_t q = {0};
    int rc;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help();
            return QUEUES_EXIT_OK;
        }
    if (parse_args(argc, argv, &args, err, sizeof(err)) != 0) {
        rc = QUEUES_EXIT_REFUSED;
        goto out;
    }
    if (cfg_load(conf_table, err, sizeof(err)) != 0) {
        rc = QUEUES_EXIT_REFUSED;
        goto out;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    q = (queues_t){
        .mgmt = mgmt_new(conf.api_url, conf.api_user, conf.api_password, conf.vhost, conf.timeout_ms, err,
                         sizeof(err)),
        .vhost = conf.vhost,
        .amqp_url = conf.amqp_url,
        .timeout_ms = conf.timeout_ms,
        .json = args.json,
    };
    if (q.mgmt == NULL) {
        rc = QUEUES_EXIT_REFUSED;
        goto out_curl;
    }
    if (strcmp(args.command, "list") == 0)
        rc = list_run(&q, err, sizeof(err));
    else if (strcmp(args.command, "peek") == 0)
        rc = peek_run(&q, args.queue, args.count, err, sizeof(err));
    else
        rc = replay_run(&q, args.queue, args.count, args.to_queue, err, sizeof(err));
out_curl:
    mgmt_free(q.mgmt);
    curl_global_cleanup();
out:
    fflush(stdout);
    if (rc != QUEUES_EXIT_OK) {
        fputs("queues: ", stderr);
        queues_print_escaped(stderr, err[0] ? err : "failed", strlen(err[0] ? err : "failed"));
        fputc('\n', stderr);
    }
    cfg_free(conf_table);
    return rc;
}
