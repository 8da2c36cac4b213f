/* cfg.h -- typed environment variables with defaults, one table per daemon, and --help. */
#ifndef CFG_H
#define CFG_H

#include <stdio.h>

typedef enum {
    CFG_STRING, /* char **: points into the environment or at the default; never freed */
    CFG_INT,    /* long * */
    CFG_BOOL,   /* int *: 1/0 from true/false/1/0/yes/no/on/off */
    CFG_MS,     /* long *: a duration in milliseconds: "250ms", "5s", "2m", "1h", or a bare number of ms */
    CFG_SECRET, /* char **: the value of NAME, or the contents of the file named by NAME_FILE
                   (trailing newline stripped, malloc'd, freed by cfg_free); never printed */
} cfg_type_t;

typedef struct {
    const char *name; /* environment variable, e.g. "GATEWAY_LISTEN" */
    cfg_type_t type;
    const char *def;  /* default as text, as a user would write it; NULL means "unset" (empty) */
    const char *help; /* one line for --help and the README */
    void *dst;        /* where the typed value goes */
    long min, max;    /* bounds for CFG_INT and CFG_MS (ignored when min == max == 0) */
} cfg_var_t;

/* Loads every variable of the table (terminated by an entry with name == NULL) from the
 * environment, falling back to defaults. Returns 0, or -1 with a message in err
 * ("GATEWAY_PORT: not an integer: abc") on the first bad value. */
int cfg_load(const cfg_var_t *table, char *err, size_t errlen);

/* Prints the usage line (--help, --healthcheck: every daemon takes both), the summary, then the table as "
 * NAME  (type, default: X)\n      help" lines for --help. */
void cfg_print_help(FILE *out, const char *program, const char *summary, const cfg_var_t *table);

/* For main(): handles --help (prints, exits 0); loads the table and on error prints it to
 * stderr and exits 2. Other arguments are left for the caller (argv is not modified). */
void cfg_main(int argc, char **argv, const char *summary, const cfg_var_t *table);

/* Frees what CFG_SECRET values allocated. */
void cfg_free(const cfg_var_t *table);

#endif
