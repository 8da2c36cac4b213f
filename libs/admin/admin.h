/* admin.h -- a tiny per-daemon HTTP listener: /healthz, /readyz, /metrics; and --healthcheck. */
#ifndef ADMIN_H
#define ADMIN_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "metrics/metrics.h"

typedef struct admin admin_t;

/* Readiness: add one member per dependency to checks ("broker": "up" | "down", ...) and return
 * 1 if ready, 0 if not. Called on the admin thread. */
typedef int (*admin_ready_fn)(void *ud, cJSON *checks);

/* Starts a thread serving HTTP/1.x on listen ("127.0.0.1:9101", "0.0.0.0:9101", ":9101"):
 *   GET /healthz  200 {"status":"ok"} while the process runs
 *   GET /readyz   200 {"status":"ready","checks":{...}} or 503 {"status":"not ready",...}
 *   GET /metrics  the registry in Prometheus text format (reg may be NULL)
 * Anything else is 404. Returns NULL with a message in err if it cannot listen.
 * reg and ud are borrowed until admin_stop. */
admin_t *admin_start(const char *listen, metrics_registry_t *reg, admin_ready_fn ready, void *ud, char *err,
                     size_t errlen);
/* The port actually bound (useful with port 0). */
int admin_port(const admin_t *a);
void admin_stop(admin_t *a);

/* Splits "host:port" (host may be empty or "*": all interfaces). Returns 0 or -1. */
int admin_parse_listen(const char *listen, char *host, size_t hostlen, int *port);

/* For `<daemon> --healthcheck`: GET path on listen (a wildcard host is probed on 127.0.0.1),
 * giving up after 2 s without progress. Returns 0 if it answered 200, else 1: a process exit
 * code. Fills msg with what happened, for the operator: "GET http://127.0.0.1:9101/healthz
 * answered 200", "GET http://127.0.0.1:9101/healthz: Connection refused". */
int admin_healthcheck(const char *listen, const char *path, char *msg, size_t msglen);

#endif
