/* admin.c -- a tiny per-daemon HTTP listener: /healthz, /readyz, /metrics; and --healthcheck. */
#include "admin/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"

struct admin {
    int fd;
    int port;
    int stop_pipe[2];
    pthread_t thread;
    metrics_registry_t *reg;
    admin_ready_fn ready;
    void *ud;
};

int admin_parse_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= hostlen)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        snprintf(host, hostlen, "0.0.0.0");
    return 0;
}

static void admin__send(int fd, int status, const char *ctype, const char *body, size_t len)
{
    const char *reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, ctype, len);
    (void)!write(fd, head, (size_t)n);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, body + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

static void admin__serve(admin_t *a, int fd)
{
    char buf[2048];
    size_t got = 0;
    uint64_t deadline = core_now_ms() + 1000;
    /* Read the request head (we only need its first line). */
    while (got < sizeof(buf) - 1 && memmem(buf, got, "\r\n\r\n", 4) == NULL) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = core_now_ms();
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            return;
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
    }
    buf[got] = '\0';
    char method[8], path[256];
    if (sscanf(buf, "%7s %255s", method, path) != 2)
        return;
    if (strcmp(path, "/healthz") == 0) {
        static const char ok[] = "{\"status\":\"ok\"}";
        admin__send(fd, 200, "application/json", ok, sizeof(ok) - 1);
    } else if (strcmp(path, "/readyz") == 0) {
        cJSON *root = cJSON_CreateObject(), *checks = cJSON_CreateObject();
        int ready = a->ready != NULL ? a->ready(a->ud, checks) : 1;
        cJSON_AddStringToObject(root, "status", ready ? "ready" : "not ready");
        cJSON_AddItemToObject(root, "checks", checks);
        char *body = json_print(root);
        admin__send(fd, ready ? 200 : 503, "application/json", body, strlen(body));
        free(body);
        cJSON_Delete(root);
    } else if (strcmp(path, "/metrics") == 0) {
        size_t len = 0;
        char *body = a->reg != NULL ? metrics_render(a->reg, &len) : xstrdup("");
        admin__send(fd, 200, METRICS_CONTENT_TYPE, body, len);
        free(body);
    } else {
        static const char nf[] = "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404}";
        admin__send(fd, 404, "application/problem+json", nf, sizeof(nf) - 1);
    }
}

static void *admin__thread(void *arg)
{
    admin_t *a = arg;
    for (;;) {
        struct pollfd fds[2] = {{.fd = a->fd, .events = POLLIN}, {.fd = a->stop_pipe[0], .events = POLLIN}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (fds[0].revents & POLLIN) {
            int c = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            admin__serve(a, c);
            close(c);
        }
    }
    return NULL;
}

admin_t *admin_start(const char *listen_addr, metrics_registry_t *reg, admin_ready_fn ready, void *ud, char *err,
                     size_t errlen)
{
    char host[128];
    int port;
    if (admin_parse_listen(listen_addr, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "admin listener: bad address %s (want host:port)", listen_addr);
        return NULL;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "admin listener: bad IPv4 address %s", host);
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "admin listener on %s: %s", listen_addr, strerror(errno));
        close(fd);
        return NULL;
    }
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    admin_t *a = xcalloc(1, sizeof(*a));
    a->fd = fd;
    a->port = ntohs(sa.sin_port);
    a->reg = reg;
    a->ready = ready;
    a->ud = ud;
    CORE_ASSERT(pipe2(a->stop_pipe, O_CLOEXEC) == 0);
    CORE_ASSERT(pthread_create(&a->thread, NULL, admin__thread, a) == 0);
    return a;
}

int admin_port(const admin_t *a)
{
    return a->port;
}

void admin_stop(admin_t *a)
{
    if (a == NULL)
        return;
    (void)!write(a->stop_pipe[1], "x", 1);
    pthread_join(a->thread, NULL);
    close(a->fd);
    close(a->stop_pipe[0]);
    close(a->stop_pipe[1]);
    free(a);
}

int admin_healthcheck(const char *listen_addr, const char *path, char *msg, size_t msglen)
{
    char host[128];
    int port, fd = -1, rc = 1;
    if (admin_parse_listen(listen_addr, host, sizeof(host), &port) != 0) {
        snprintf(msg, msglen, "bad listen address %s (want host:port)", listen_addr);
        return 1;
    }
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(msg, msglen, "bad IPv4 address %s", host);
        return 1;
    }
    char url[192];
    snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* Both timeouts bound connect, write and each read: the whole probe takes at most a few of them. */
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(msg, msglen, "GET %s: %s", url, strerror(errno));
        goto out;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    ssize_t w = write(fd, req, (size_t)n);
    if (w != n) {
        snprintf(msg, msglen, "GET %s: %s", url, w < 0 ? strerror(errno) : "short write");
        goto out;
    }
    /* The status line: "HTTP/1.1 200 OK". */
    char buf[64] = {0};
    size_t got = 0;
    while (got < 12) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0) {
            snprintf(msg, msglen, "GET %s: %s", url,
                     r == 0                                    ? "connection closed before an answer"
                     : errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within 2 s"
                                                               : strerror(errno));
            goto out;
        }
        got += (size_t)r;
    }
    if (strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
        snprintf(msg, msglen, "GET %s: not an HTTP answer", url);
        goto out;
    }
    int status = atoi(buf + 9);
    rc = status == 200 ? 0 : 1;
    snprintf(msg, msglen, "GET %s answered %d", url, status);
out:
    close(fd);
    return rc;
}
