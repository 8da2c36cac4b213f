/* test_cfg.c -- every variable type from the environment, defaults, bounds, secrets and --help. */
#include "cfg/cfg.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char err[256];

/* Loads a one-variable table; returns cfg_load's result. */
static int test_load(const char *name, cfg_type_t type, const char *def, void *dst, long min, long max)
{
    cfg_var_t table[] = {
        {.name = name, .type = type, .def = def, .help = "test", .dst = dst, .min = min, .max = max},
        {.name = NULL},
    };
    err[0] = '\0';
    return cfg_load(table, err, sizeof(err));
}

/* Writes content to a new temporary file; returns its path (caller unlinks and frees). */
static char *test_temp_file(const char *content, size_t len)
{
    char *path = strdup("/tmp/test_cfg_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

/* ---------------------------------------------------------------------------------------
 * Strings
 * ------------------------------------------------------------------------------------- */

Test(cfg, string_from_env_and_default)
{
    char *s = NULL;
    unsetenv("T_LISTEN");
    cr_assert_eq(test_load("T_LISTEN", CFG_STRING, "0.0.0.0:8080", &s, 0, 0), 0);
    cr_assert_str_eq(s, "0.0.0.0:8080");

    setenv("T_LISTEN", "127.0.0.1:9000", 1);
    cr_assert_eq(test_load("T_LISTEN", CFG_STRING, "0.0.0.0:8080", &s, 0, 0), 0);
    cr_assert_str_eq(s, "127.0.0.1:9000");
}

Test(cfg, empty_value_counts_as_unset)
{
    char *s = NULL;
    long n = 0;
    setenv("T_LISTEN", "", 1);
    setenv("T_PORT", "", 1);
    cr_assert_eq(test_load("T_LISTEN", CFG_STRING, "default", &s, 0, 0), 0);
    cr_assert_str_eq(s, "default");
    cr_assert_eq(test_load("T_PORT", CFG_INT, "80", &n, 0, 0), 0);
    cr_assert_eq(n, 80);
}

Test(cfg, null_default_leaves_values_empty)
{
    char *s = (char *)"junk";
    long n = 99;
    int b = 99;
    unsetenv("T_X");
    cr_assert_eq(test_load("T_X", CFG_STRING, NULL, &s, 0, 0), 0);
    cr_assert_null(s);
    cr_assert_eq(test_load("T_X", CFG_INT, NULL, &n, 0, 0), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(test_load("T_X", CFG_BOOL, NULL, &b, 0, 0), 0);
    cr_assert_eq(b, 0);
}

/* ---------------------------------------------------------------------------------------
 * Integers
 * ------------------------------------------------------------------------------------- */

Test(cfg, int_values)
{
    long n = 0;
    setenv("T_PORT", "8080", 1);
    cr_assert_eq(test_load("T_PORT", CFG_INT, "1", &n, 0, 0), 0);
    cr_assert_eq(n, 8080);
    setenv("T_PORT", "-12", 1);
    cr_assert_eq(test_load("T_PORT", CFG_INT, "1", &n, 0, 0), 0);
    cr_assert_eq(n, -12);
    unsetenv("T_PORT");
    cr_assert_eq(test_load("T_PORT", CFG_INT, "443", &n, 0, 0), 0);
    cr_assert_eq(n, 443);
}

Test(cfg, int_rejects_non_numbers)
{
    long n = 7;
    const char *bad[] = {"abc", "12x", "1.5", "0x10", "99999999999999999999999", "-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("T_PORT", bad[i], 1);
        cr_assert_eq(test_load("T_PORT", CFG_INT, "1", &n, 0, 0), -1, "accepted %s", bad[i]);
        cr_assert(strstr(err, "T_PORT") != NULL, "err: %s", err);
        cr_assert(strstr(err, bad[i]) != NULL, "err: %s", err);
    }
    setenv("T_PORT", "abc", 1);
    test_load("T_PORT", CFG_INT, "1", &n, 0, 0);
    cr_assert_str_eq(err, "T_PORT: not an integer: abc");
    cr_assert_eq(n, 7, "a bad value must not be stored");
}

Test(cfg, int_bounds)
{
    long n = 0;
    setenv("T_PORT", "65535", 1);
    cr_assert_eq(test_load("T_PORT", CFG_INT, "80", &n, 1, 65535), 0);
    cr_assert_eq(n, 65535);
    setenv("T_PORT", "1", 1);
    cr_assert_eq(test_load("T_PORT", CFG_INT, "80", &n, 1, 65535), 0);
    setenv("T_PORT", "65536", 1);
    cr_assert_eq(test_load("T_PORT", CFG_INT, "80", &n, 1, 65535), -1);
    cr_assert(strstr(err, "T_PORT") && strstr(err, "range"), "err: %s", err);
    setenv("T_PORT", "0", 1);
    cr_assert_eq(test_load("T_PORT", CFG_INT, "80", &n, 1, 65535), -1);
    /* min == max == 0: no bounds */
    setenv("T_PORT", "-1000000", 1);
    cr_assert_eq(test_load("T_PORT", CFG_INT, "80", &n, 0, 0), 0);
    cr_assert_eq(n, -1000000);
}

Test(cfg, bad_default_is_reported_as_default)
{
    long n = 0;
    unsetenv("T_PORT");
    cr_assert_eq(test_load("T_PORT", CFG_INT, "eighty", &n, 0, 0), -1);
    cr_assert(strstr(err, "default") != NULL, "err: %s", err);
}

/* ---------------------------------------------------------------------------------------
 * Booleans
 * ------------------------------------------------------------------------------------- */

Test(cfg, bool_spellings)
{
    const char *yes[] = {"true", "TRUE", "True", "1", "yes", "YES", "on", "On"};
    const char *no[] = {"false", "FALSE", "0", "no", "No", "off", "OFF"};
    int b;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = 0;
        setenv("T_FLAG", yes[i], 1);
        cr_assert_eq(test_load("T_FLAG", CFG_BOOL, "false", &b, 0, 0), 0, "%s", yes[i]);
        cr_assert_eq(b, 1, "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = 1;
        setenv("T_FLAG", no[i], 1);
        cr_assert_eq(test_load("T_FLAG", CFG_BOOL, "true", &b, 0, 0), 0, "%s", no[i]);
        cr_assert_eq(b, 0, "%s", no[i]);
    }
    unsetenv("T_FLAG");
    cr_assert_eq(test_load("T_FLAG", CFG_BOOL, "yes", &b, 0, 0), 0);
    cr_assert_eq(b, 1);
}

Test(cfg, bool_rejects_others)
{
    int b = 0;
    const char *bad[] = {"maybe", "2", "y", "truee", " true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("T_FLAG", bad[i], 1);
        cr_assert_eq(test_load("T_FLAG", CFG_BOOL, "false", &b, 0, 0), -1, "accepted %s", bad[i]);
        cr_assert(strstr(err, "T_FLAG") != NULL, "err: %s", err);
    }
}

/* ---------------------------------------------------------------------------------------
 * Durations
 * ------------------------------------------------------------------------------------- */

Test(cfg, ms_units)
{
    static const struct {
        const char *text;
        long ms;
    } cases[] = {{"250ms", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000}, {"42", 42}, {"0", 0}};
    long ms;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ms = -1;
        setenv("T_TIMEOUT", cases[i].text, 1);
        cr_assert_eq(test_load("T_TIMEOUT", CFG_MS, "1s", &ms, 0, 0), 0, "%s: %s", cases[i].text, err);
        cr_assert_eq(ms, cases[i].ms, "%s", cases[i].text);
    }
    unsetenv("T_TIMEOUT");
    cr_assert_eq(test_load("T_TIMEOUT", CFG_MS, "30s", &ms, 0, 0), 0);
    cr_assert_eq(ms, 30000);
}

Test(cfg, ms_rejects_bad_durations)
{
    long ms = 0;
    const char *bad[] = {"5x", "s", "ms", "5 s", "5sec", "1.5s", "abc", "99999999999999999h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("T_TIMEOUT", bad[i], 1);
        cr_assert_eq(test_load("T_TIMEOUT", CFG_MS, "1s", &ms, 0, 0), -1, "accepted %s", bad[i]);
        cr_assert(strstr(err, "T_TIMEOUT") != NULL, "err: %s", err);
    }
}

Test(cfg, ms_bounds_apply_after_units)
{
    long ms = 0;
    setenv("T_TIMEOUT", "2m", 1);
    cr_assert_eq(test_load("T_TIMEOUT", CFG_MS, "1s", &ms, 100, 60000), -1);
    cr_assert(strstr(err, "range") != NULL, "err: %s", err);
    setenv("T_TIMEOUT", "1m", 1);
    cr_assert_eq(test_load("T_TIMEOUT", CFG_MS, "1s", &ms, 100, 60000), 0);
    cr_assert_eq(ms, 60000);
    setenv("T_TIMEOUT", "50ms", 1);
    cr_assert_eq(test_load("T_TIMEOUT", CFG_MS, "1s", &ms, 100, 60000), -1);
}

/* ---------------------------------------------------------------------------------------
 * Secrets
 * ------------------------------------------------------------------------------------- */

Test(cfg, secret_from_env)
{
    char *s = NULL;
    cfg_var_t table[] = {{.name = "T_SECRET", .type = CFG_SECRET, .dst = &s}, {.name = NULL}};
    setenv("T_SECRET", "hunter2", 1);
    setenv("T_SECRET_FILE", "/nonexistent/ignored", 1);
    cr_assert_eq(cfg_load(table, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(s, "hunter2");
    cfg_free(table);
    cr_assert_null(s);
}

Test(cfg, secret_from_file_strips_trailing_newline)
{
    static const struct {
        const char *content, *want;
    } cases[] = {
        {"s3cret\n", "s3cret"},
        {"s3cret\r\n", "s3cret"},
        {"s3cret", "s3cret"},
        {"two\nlines\n", "two\nlines"},
        {"", ""},
    };
    char *s = NULL;
    cfg_var_t table[] = {{.name = "T_SECRET", .type = CFG_SECRET, .dst = &s}, {.name = NULL}};
    unsetenv("T_SECRET");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = test_temp_file(cases[i].content, strlen(cases[i].content));
        setenv("T_SECRET_FILE", path, 1);
        cr_assert_eq(cfg_load(table, err, sizeof(err)), 0, "%s", err);
        cr_assert_str_eq(s, cases[i].want);
        cfg_free(table);
        unlink(path);
        free(path);
    }
}

Test(cfg, secret_file_missing_is_an_error)
{
    char *s = NULL;
    cfg_var_t table[] = {{.name = "T_SECRET", .type = CFG_SECRET, .dst = &s}, {.name = NULL}};
    unsetenv("T_SECRET");
    setenv("T_SECRET_FILE", "/nonexistent/secret", 1);
    cr_assert_eq(cfg_load(table, err, sizeof(err)), -1);
    cr_assert(strstr(err, "T_SECRET_FILE") != NULL, "err: %s", err);
    cr_assert(strstr(err, "/nonexistent/secret") != NULL, "err: %s", err);
    cr_assert_null(s);
}

Test(cfg, secret_file_size_limit)
{
    size_t max = 64 * 1024;
    char *big = malloc(max + 1);
    memset(big, 'k', max + 1);
    char *s = NULL;
    cfg_var_t table[] = {{.name = "T_SECRET", .type = CFG_SECRET, .dst = &s}, {.name = NULL}};
    unsetenv("T_SECRET");

    char *path = test_temp_file(big, max);
    setenv("T_SECRET_FILE", path, 1);
    cr_assert_eq(cfg_load(table, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(strlen(s), max);
    cfg_free(table);
    unlink(path);
    free(path);

    path = test_temp_file(big, max + 1);
    setenv("T_SECRET_FILE", path, 1);
    cr_assert_eq(cfg_load(table, err, sizeof(err)), -1);
    cr_assert(strstr(err, "T_SECRET_FILE") != NULL, "err: %s", err);
    cr_assert_null(s);
    unlink(path);
    free(path);
    free(big);
}

Test(cfg, secret_unset_uses_default_or_null)
{
    char *a = NULL, *b = (char *)"junk";
    cfg_var_t table[] = {
        {.name = "T_SECRET_A", .type = CFG_SECRET, .def = "dev-only", .dst = &a},
        {.name = "T_SECRET_B", .type = CFG_SECRET, .dst = &b},
        {.name = NULL},
    };
    unsetenv("T_SECRET_A");
    unsetenv("T_SECRET_A_FILE");
    unsetenv("T_SECRET_B");
    setenv("T_SECRET_B_FILE", "", 1);
    cr_assert_eq(cfg_load(table, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(a, "dev-only");
    cr_assert_null(b);
    cfg_free(table);
    cr_assert_null(a);
}

/* ---------------------------------------------------------------------------------------
 * Whole tables, --help and cfg_main
 * ------------------------------------------------------------------------------------- */

static char *t_listen;
static long t_port, t_timeout;
static int t_debug;
static char *t_password;

static const cfg_var_t test_table[] = {
    {"T_LISTEN", CFG_STRING, "0.0.0.0", "address to listen on", &t_listen, 0, 0},
    {"T_PORT", CFG_INT, "8080", "TCP port", &t_port, 1, 65535},
    {"T_DEBUG", CFG_BOOL, "false", "verbose logging", &t_debug, 0, 0},
    {"T_TIMEOUT", CFG_MS, "5s", "upstream timeout", &t_timeout, 0, 0},
    {"T_PASSWORD", CFG_SECRET, NULL, "database password", &t_password, 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

Test(cfg, table_loads_every_variable_and_stops_at_first_error)
{
    unsetenv("T_LISTEN");
    setenv("T_PORT", "9090", 1);
    setenv("T_DEBUG", "on", 1);
    setenv("T_TIMEOUT", "250ms", 1);
    setenv("T_PASSWORD", "pw", 1);
    cr_assert_eq(cfg_load(test_table, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(t_listen, "0.0.0.0");
    cr_assert_eq(t_port, 9090);
    cr_assert_eq(t_debug, 1);
    cr_assert_eq(t_timeout, 250);
    cr_assert_str_eq(t_password, "pw");
    cfg_free(test_table);

    setenv("T_DEBUG", "perhaps", 1);
    cr_assert_eq(cfg_load(test_table, err, sizeof(err)), -1);
    cr_assert(strncmp(err, "T_DEBUG: ", 9) == 0, "err: %s", err);
}

Test(cfg, short_error_buffer_is_truncated_safely)
{
    char small[8];
    setenv("T_PORT", "not-a-port-at-all", 1);
    cr_assert_eq(cfg_load(test_table, small, sizeof(small)), -1);
    cr_assert_eq(strlen(small), sizeof(small) - 1);
    cr_assert_eq(cfg_load(test_table, NULL, 0), -1);
}

Test(cfg, help_lists_every_variable)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cfg_print_help(out, "gatewayd", "The public HTTP gateway.", test_table);
    fclose(out);

    cr_assert(strstr(text, "gatewayd") != NULL, "%s", text);
    cr_assert(strstr(text, "The public HTTP gateway.") != NULL, "%s", text);
    cr_assert(strstr(text, "  T_LISTEN  (string, default: 0.0.0.0)\n      address to listen on\n") != NULL,
              "%s", text);
    cr_assert(strstr(text, "  T_PORT  (integer, default: 8080)\n      TCP port\n") != NULL, "%s", text);
    cr_assert(strstr(text, "  T_DEBUG  (boolean, default: false)\n") != NULL, "%s", text);
    cr_assert(strstr(text, "  T_TIMEOUT  (duration, default: 5s)\n") != NULL, "%s", text);
    cr_assert(strstr(text, "  T_PASSWORD  (secret, default: none)\n      database password\n") != NULL, "%s",
              text);
    cr_assert(strstr(text, "T_PASSWORD_FILE") != NULL, "%s", text);
    free(text);
}

Test(cfg, help_never_prints_a_secret_default)
{
    char *pw = NULL;
    cfg_var_t table[] = {{"T_PW", CFG_SECRET, "topsecret", "password", &pw, 0, 0},
                         {NULL, 0, NULL, NULL, NULL, 0, 0}};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cfg_print_help(out, "x", NULL, table);
    fclose(out);
    cr_assert(strstr(text, "topsecret") == NULL, "%s", text);
    cr_assert(strstr(text, "T_PW") != NULL, "%s", text);
    free(text);
}

/* Runs cfg_main in a child with stdout and stderr captured; returns the exit status
 * (-1 if cfg_main returned) and the output in *output (caller frees). */
static int test_run_main(char **argv, char **output)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        int argc = 0;
        while (argv[argc] != NULL)
            argc++;
        cfg_main(argc, argv, "Test daemon.", test_table);
        _exit(100); /* returned: no exit */
    }
    close(fds[1]);
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fds[0], buf + len, cap - len - 1)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    *output = buf;
    return WEXITSTATUS(status) == 100 ? -1 : WEXITSTATUS(status);
}

Test(cfg, main_help_prints_and_exits_zero)
{
    char *out;
    setenv("T_PORT", "bad", 1); /* --help works even when the configuration is broken */
    char *argv[] = {"/usr/bin/testd", "--verbose", "--help", NULL};
    cr_assert_eq(test_run_main(argv, &out), 0);
    cr_assert(strstr(out, "testd") != NULL, "%s", out);
    cr_assert(strstr(out, "T_PORT") != NULL, "%s", out);
    free(out);

    char *argv_h[] = {"testd", "-h", NULL};
    cr_assert_eq(test_run_main(argv_h, &out), 0);
    cr_assert(strstr(out, "T_TIMEOUT") != NULL, "%s", out);
    free(out);
}

Test(cfg, main_bad_value_exits_two)
{
    char *out;
    setenv("T_PORT", "99999", 1);
    char *argv[] = {"/usr/bin/testd", NULL};
    cr_assert_eq(test_run_main(argv, &out), 2);
    cr_assert(strncmp(out, "testd: T_PORT: ", 15) == 0, "%s", out);
    free(out);
}

Test(cfg, main_good_config_returns)
{
    char *out;
    unsetenv("T_PORT");
    setenv("T_PASSWORD", "x", 1);
    char *argv[] = {"testd", "extra", NULL};
    cr_assert_eq(test_run_main(argv, &out), -1);
    cr_assert_str_eq(out, "");
    free(out);
}
