/* README.md's tour, run as written: every "$ " command of the section "## A tour", in order, in a
 * scratch folder laid out as a clone (build/, data/, examples/ linked in, and a runs/demo/ as
 * `make demo` leaves it, which the tour must not touch), each output compared with the lines the
 * README shows beneath the command by their shape: the same lines, the same words, words with
 * digits in them free (numbers and timings differ run to run); "..." skips lines, and what follows
 * it is matched against the output's last lines. Outputs that depend on the machine or on the
 * model's draws (tern hw, tern sample) are compared by their first word only. To keep the test
 * short, training runs a few steps of smaller batches: --steps values are cut down and a new run
 * gets --batch 4 --eval-batches 1 (the shapes of its lines do not change).
 *
 * TERN_TOUR_RECORD=FILE writes each command and its whole output to FILE, and TERN_TOUR_FULL=1
 * runs the commands exactly as written: together they make the outputs the README shows. The test
 * also checks that the README links only files inside the clone. */
#include "lib.h"

#include <sys/stat.h>

static char out[1 << 17];

/* One command of the tour and the lines shown beneath it. */
typedef struct {
    char *cmd;
    char *want[64];
    int n_want;
} step;

static int has_digit(const char *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (w[i] >= '0' && w[i] <= '9') return 1;
    return 0;
}

/* Whether a line has the shape of the one shown: as many words, each the same or both holding a
 * digit. */
static int same_shape(const char *want, const char *got) {
    for (;;) {
        while (*want == ' ') want++;
        while (*got == ' ') got++;
        if (!*want || !*got) return !*want && !*got;
        size_t a = strcspn(want, " "), b = strcspn(got, " ");
        if (!((a == b && !memcmp(want, got, a)) || (has_digit(want, a) && has_digit(got, b)))) return 0;
        want += a;
        got += b;
    }
}

/* Splits text into lines (in place), trailing spaces dropped; returns how many. */
static int split_lines(char *text, char **lines, int max) {
    int n = 0;
    for (char *p = text; *p && n < max;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        size_t k = strlen(p);
        while (k && (p[k - 1] == ' ' || p[k - 1] == '\r')) p[--k] = 0;
        lines[n++] = p;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

/* The output against the lines shown: the lines before "..." from the top, those after it from
 * the bottom. NULL when they agree, else a description (static). */
static const char *compare(const step *s, char *output, int loose) {
    static char why[4096];
    char *got[4096];
    int n = split_lines(output, got, 4096);
    if (loose) {
        size_t a = s->n_want ? strcspn(s->want[0], " ") : 0;
        if (n >= 1 && s->n_want >= 1 && !strncmp(s->want[0], got[0], a) && (got[0][a] == ' ' || !got[0][a])) return NULL;
        snprintf(why, sizeof why, "first word differs: shown '%s', got '%s'", s->n_want ? s->want[0] : "", n ? got[0] : "");
        return why;
    }
    int dots = -1;
    for (int i = 0; i < s->n_want; i++)
        if (!strcmp(s->want[i], "...")) dots = i;
    int head = dots < 0 ? s->n_want : dots, tail = dots < 0 ? 0 : s->n_want - dots - 1;
    if (dots < 0 ? n != head : n < head + tail) {
        snprintf(why, sizeof why, "%d lines shown, %d printed", s->n_want, n);
        return why;
    }
    for (int i = 0; i < head; i++)
        if (!same_shape(s->want[i], got[i])) {
            snprintf(why, sizeof why, "line %d: shown '%s', got '%s'", i + 1, s->want[i], got[i]);
            return why;
        }
    for (int i = 0; i < tail; i++)
        if (!same_shape(s->want[dots + 1 + i], got[n - tail + i])) {
            snprintf(why, sizeof why, "line %d from the end: shown '%s', got '%s'", tail - i, s->want[dots + 1 + i], got[n - tail + i]);
            return why;
        }
    return NULL;
}

/* The tour's commands and outputs from README.md (its text is kept in *text). */
static int read_tour(char **text, step *steps, int max) {
    size_t n;
    if (tern_read_file("README.md", text, &n) != TERN_OK) return -1;
    char *a = strstr(*text, "\n## A tour\n");
    if (!a) return -1;
    char *b = strstr(a + 1, "\n## ");
    if (b) *b = 0;
    int k = 0, in_block = 0;
    char *lines[2048];
    int nl = split_lines(a, lines, 2048);
    for (int i = 0; i < nl; i++) {
        if (!strncmp(lines[i], "```", 3)) {
            in_block = !in_block;
            continue;
        }
        if (!in_block) continue;
        if (!strncmp(lines[i], "$ ", 2)) {
            if (k == max) return -1;
            steps[k].cmd = lines[i] + 2;
            steps[k].n_want = 0;
            k++;
        } else if (k && steps[k - 1].n_want < 64) {
            steps[k - 1].want[steps[k - 1].n_want++] = lines[i];
        }
    }
    return k;
}

/* The command as the test runs it: fewer steps, and a new run's smaller batches. */
static void shorten(const char *cmd, char *run, size_t n) {
    snprintf(run, n, "%s", cmd);
    if (getenv("TERN_TOUR_FULL") || strncmp(cmd, "build/tern train ", 17)) return;
    static const struct {
        const char *from, *to;
    } cuts[] = {{"--steps 330", "--steps 4"}, {"--steps 20", "--steps 2"}};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char *p = strstr(run, cuts[i].from);
        if (p) {
            char rest[2048];
            snprintf(rest, sizeof rest, "%s", p + strlen(cuts[i].from));
            snprintf(p, n - (size_t)(p - run), "%s%s", cuts[i].to, rest);
        }
    }
    if (!strstr(run, "--resume")) {
        size_t k = strlen(run);
        snprintf(run + k, n - k, "%s --batch 4 --eval-batches 1", strstr(run, "--steps") ? "" : " --steps 3");
    }
}

static void test_readme_tour(void) {
    const char *w = test_tmpdir("tour");
    char *text = NULL, cwd[1024];
    step steps[64];
    int n = read_tour(&text, steps, 64);
    CHECK(n >= 20, "README.md: %d tour commands found", n);
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    /* a clone after `make demo`: the demo's folder, which the tour must leave as it is */
    int rc = run_cmd(out, sizeof out, "cd %s && ln -s %s/build %s/data %s/examples . && mkdir -p runs/demo/run && echo mine > runs/demo/run/notes",
                     w, cwd, cwd, cwd);
    CHECK(rc == 0, "%s", out);
    const char *rec = getenv("TERN_TOUR_RECORD");
    FILE *rf = rec ? fopen(rec, "w") : NULL;
    for (int i = 0; i < n; i++) {
        char cmd[4096];
        shorten(steps[i].cmd, cmd, sizeof cmd);
        rc = run_cmd(out, sizeof out, "cd %s && %s", w, cmd);
        if (rf) fprintf(rf, "$ %s\n%s\x1e\n", steps[i].cmd, out);
        int loose = !strncmp(steps[i].cmd, "build/tern hw", 13) || !strncmp(steps[i].cmd, "build/tern sample", 17);
        /* a refusal the tour shows is followed by `; echo "exit $?"`, so every command exits 0 */
        CHECK(rc == 0, "$ %s: exit %d: %s", cmd, rc, out);
        const char *why = compare(&steps[i], out, loose);
        CHECK(why == NULL, "$ %s: %s", cmd, why);
    }
    if (rf) fclose(rf);
    char notes[1024];
    snprintf(notes, sizeof notes, "%s/runs/demo/run/notes", w);
    CHECK(tern_path_exists(notes), "the tour touched the demo's run");
    free(text);
}

/* Every link of the README names a file of the clone. */
static void test_readme_links(void) {
    char *text = NULL;
    size_t n;
    CHECK(tern_read_file("README.md", &text, &n) == TERN_OK, "%s", tern_errmsg());
    for (char *p = text ? strstr(text, "](") : NULL; p; p = strstr(p + 1, "](")) {
        char target[512];
        if (sscanf(p + 2, "%511[^)# ]", target) != 1 || strstr(target, "://")) continue;
        CHECK(strncmp(target, "../", 3) && tern_path_exists(target), "README.md links '%s', not a file of the clone", target);
    }
    CHECK(text && !strstr(text, "../shared"), "README.md names ../shared, outside the clone");
    free(text);
}

int main(void) {
    RUN(test_readme_links);
    RUN(test_readme_tour);
    return check_exit();
}
