/* Option parsing and error exits shared by every subcommand. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void cli_fail(const char *cmd, tern_status st) {
    fflush(stdout);
    fprintf(stderr, "tern %s: %s\n", cmd, tern_errmsg());
    (void)st;
    exit(1);
}

_Noreturn void cli_usage(const char *cmd, const char *fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "tern %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(2);
}

int cli_flag(char **argv, int i, const char *name) { return strcmp(argv[i], name) == 0; }

int cli_opt_str(const char *cmd, int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) cli_usage(cmd, "option %s needs a value", name);
    *val = argv[++*i];
    return 1;
}

int cli_opt_long(const char *cmd, int argc, char **argv, int *i, const char *name, long long *val) {
    const char *s;
    if (!cli_opt_str(cmd, argc, argv, i, name, &s)) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) cli_usage(cmd, "option %s needs a whole number, got '%s'", name, s);
    *val = v;
    return 1;
}

int cli_opt_double(const char *cmd, int argc, char **argv, int *i, const char *name, double *val) {
    const char *s;
    if (!cli_opt_str(cmd, argc, argv, i, name, &s)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) cli_usage(cmd, "option %s needs a number, got '%s'", name, s);
    *val = v;
    return 1;
}

tern_backend *cli_backend(const char *cmd, const char *device) {
    tern_backend *be = NULL;
    tern_status st = tern_backend_open(&be, device);
    if (st != TERN_OK) cli_fail(cmd, st);
    return be;
}
