/* cfg.c -- typed environment variables with defaults, NAME_FILE secrets, and --help. */
#include "cfg/cfg.h"

#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CFG_SECRET_MAX (64 * 1024)

static const char *const cfg_type_names[] = {
    [CFG_STRING] = "string", [CFG_INT] = "integer",   [CFG_BOOL] = "boolean",
    [CFG_MS] = "duration",   [CFG_SECRET] = "secret",
};

static void cfg__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void cfg__err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* An empty variable counts as unset, so `FOO= daemon` falls back to the default. */
static const char *cfg__getenv(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* ---------------------------------------------------------------------------------------
 * Parsers: text -> typed value; 0 on success, -1 if the text is not of the type.
 * ------------------------------------------------------------------------------------- */

static int cfg__parse_int(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int cfg__parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int cfg__parse_ms(const char *s, long *out)
{
    static const struct {
        const char *suffix;
        long scale;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    for (size_t i = 0; i < CORE_ARRAY_SIZE(units); i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > LONG_MAX / units[i].scale || v < LONG_MIN / units[i].scale)
            return -1;
        *out = v * units[i].scale;
        return 0;
    }
    return -1;
}

/* Reads a secret file whole: at most CFG_SECRET_MAX bytes, one trailing "\n" or "\r\n"
 * removed. Returns a malloc'd string, or NULL with err filled. */
static char *cfg__read_secret_file(const char *var, const char *path, char *err, size_t errlen)
{
    char *buf = xmalloc(CFG_SECRET_MAX + 1);
    size_t len = 0;
    char *result = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg__err(err, errlen, "%s: cannot open %s: %s", var, path, strerror(errno));
        goto out;
    }
    for (;;) {
        /* One byte past the limit tells a file of exactly CFG_SECRET_MAX from a larger one. */
        ssize_t n = read(fd, buf + len, CFG_SECRET_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cfg__err(err, errlen, "%s: cannot read %s: %s", var, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CFG_SECRET_MAX) {
            cfg__err(err, errlen, "%s: %s is larger than %d bytes", var, path, CFG_SECRET_MAX);
            goto out;
        }
    }
    if (memchr(buf, '\0', len) != NULL) {
        cfg__err(err, errlen, "%s: %s contains a NUL byte", var, path);
        goto out;
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    result = xstrndup(buf, len);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------- */

static int cfg__check_bounds(const cfg_var_t *v, long value, char *err, size_t errlen)
{
    if (v->min == v->max)
        return 0;
    if (value >= v->min && value <= v->max)
        return 0;
    if (v->type == CFG_MS)
        cfg__err(err, errlen, "%s: %ldms is out of range [%ldms, %ldms]", v->name, value, v->min, v->max);
    else
        cfg__err(err, errlen, "%s: %ld is out of range [%ld, %ld]", v->name, value, v->min, v->max);
    return -1;
}

/* Loads a secret: NAME, else the file named by NAME_FILE, else the default. */
static int cfg__load_secret(const cfg_var_t *v, char *err, size_t errlen)
{
    char **dst = v->dst;
    const char *raw = cfg__getenv(v->name);
    if (raw != NULL) {
        *dst = xstrdup(raw);
        return 0;
    }
    char *file_var = xasprintf("%s_FILE", v->name);
    const char *path = cfg__getenv(file_var);
    int rc = 0;
    if (path != NULL) {
        *dst = cfg__read_secret_file(file_var, path, err, errlen);
        rc = *dst != NULL ? 0 : -1;
    } else {
        *dst = v->def != NULL ? xstrdup(v->def) : NULL;
    }
    free(file_var);
    return rc;
}

static int cfg__load_var(const cfg_var_t *v, char *err, size_t errlen)
{
    if (v->type == CFG_SECRET)
        return cfg__load_secret(v, err, errlen);

    const char *raw = cfg__getenv(v->name);
    const char *text = raw != NULL ? raw : v->def;
    /* Where the bad text came from, so a broken default is not blamed on the user. */
    const char *origin = raw != NULL ? "" : "default ";
    long n;
    int b;

    switch (v->type) {
    case CFG_STRING:
        *(const char **)v->dst = text;
        return 0;
    case CFG_INT:
        if (text == NULL) {
            *(long *)v->dst = 0;
            return 0;
        }
        if (cfg__parse_int(text, &n) != 0) {
            cfg__err(err, errlen, "%s: %snot an integer: %s", v->name, origin, text);
            return -1;
        }
        if (cfg__check_bounds(v, n, err, errlen) != 0)
            return -1;
        *(long *)v->dst = n;
        return 0;
    case CFG_MS:
        if (text == NULL) {
            *(long *)v->dst = 0;
            return 0;
        }
        if (cfg__parse_ms(text, &n) != 0) {
            cfg__err(err, errlen, "%s: %snot a duration (250ms, 5s, 2m, 1h): %s", v->name, origin, text);
            return -1;
        }
        if (cfg__check_bounds(v, n, err, errlen) != 0)
            return -1;
        *(long *)v->dst = n;
        return 0;
    case CFG_BOOL:
        if (text == NULL) {
            *(int *)v->dst = 0;
            return 0;
        }
        if (cfg__parse_bool(text, &b) != 0) {
            cfg__err(err, errlen, "%s: %snot a boolean (true/false/yes/no/on/off/1/0): %s", v->name, origin,
                     text);
            return -1;
        }
        *(int *)v->dst = b;
        return 0;
    case CFG_SECRET:
        break;
    }
    cfg__err(err, errlen, "%s: unknown variable type %d", v->name, (int)v->type);
    return -1;
}

int cfg_load(const cfg_var_t *table, char *err, size_t errlen)
{
    for (const cfg_var_t *v = table; v->name != NULL; v++)
        if (cfg__load_var(v, err, errlen) != 0)
            return -1;
    return 0;
}

void cfg_free(const cfg_var_t *table)
{
    for (const cfg_var_t *v = table; v->name != NULL; v++) {
        if (v->type != CFG_SECRET)
            continue;
        char **dst = v->dst;
        free(*dst);
        *dst = NULL;
    }
}

/* ---------------------------------------------------------------------------------------
 * --help
 * ------------------------------------------------------------------------------------- */

void cfg_print_help(FILE *out, const char *program, const char *summary, const cfg_var_t *table)
{
    fprintf(out, "Usage: %s [--help] [--healthcheck]\n\n", program);
    if (summary != NULL)
        fprintf(out, "%s\n\n", summary);
    fprintf(out, "Configuration is read from the environment:\n\n");
    for (const cfg_var_t *v = table; v->name != NULL; v++) {
        const char *type =
            (unsigned)v->type < CORE_ARRAY_SIZE(cfg_type_names) ? cfg_type_names[v->type] : "unknown";
        if (v->type == CFG_SECRET) {
            /* A secret's default is never shown, not even in --help. */
            fprintf(out, "  %s  (secret, default: %s)\n", v->name, v->def != NULL ? "hidden" : "none");
        } else {
            fprintf(out, "  %s  (%s, default: %s)\n", v->name, type, v->def != NULL ? v->def : "none");
        }
        if (v->help != NULL)
            fprintf(out, "      %s\n", v->help);
        if (v->type == CFG_SECRET)
            fprintf(out, "      Or set %s_FILE to a file holding the value.\n", v->name);
    }
}

void cfg_main(int argc, char **argv, const char *summary, const cfg_var_t *table)
{
    const char *program = "program";
    if (argc > 0 && argv[0] != NULL) {
        const char *slash = strrchr(argv[0], '/');
        program = slash != NULL ? slash + 1 : argv[0];
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cfg_print_help(stdout, program, summary, table);
            fflush(stdout);
            exit(0);
        }
    }
    char err[512];
    if (cfg_load(table, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        exit(2);
    }
}
