/* Pictures of runs: train and val loss against tokens for one or several run folders, and task
 * accuracies in a second panel when the runs have them, drawn with cairo (its SVG and PNG
 * surfaces, so both come from the same drawing code) and its toy text API with DejaVu Sans. Reads
 * metrics.jsonl, config.json and the latest checkpoint's state.json (docs/FORMATS.md); not a
 * general plotting library: one layout, chosen to be read at a glance. */
#include "watch/watch_int.h"

#include "tern/io.h"

#include <cairo/cairo-svg.h>
#include <cairo/cairo.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the data ---- */
typedef struct series {
    double *x, *y;
    size_t n, cap;
} series;

/* Task scores drawn in the second panel: the headline accuracy of each task. */
static const char *const task_keys[] = {"hellaswag_acc_norm", "lambada_acc", "piqa_acc_norm"};
static const char *const task_se_keys[] = {"hellaswag_acc_norm_stderr", "lambada_acc_stderr", "piqa_acc_norm_stderr"};
static const char *const task_labels[] = {"HellaSwag acc_norm", "LAMBADA acc", "PIQA acc_norm"};
static const double task_chance[] = {0.25, 0, 0.5}; /* 0: no chance level drawn */
#define NTASK 3

typedef struct run_data {
    char name[200];
    double tokens_per_step;
    series train, val, task[NTASK];
    series task_se[NTASK]; /* the standard error beside each task score (0 when the line has none) */
} run_data;

static tern_status push(series *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return tern_err(TERN_ENOMEM, "out of memory for a plot");
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return tern_err(TERN_ENOMEM, "out of memory for a plot");
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return TERN_OK;
}

static void series_free(series *s) {
    free(s->x);
    free(s->y);
}

typedef struct reading {
    run_data *r;
    double per_step; /* x units a step: tokens, or 1 with --steps */
} reading;

static tern_status take_line(void *ctx, const cJSON *obj, uint64_t step, size_t lineno) {
    (void)lineno;
    reading *rd = ctx;
    double x = (double)step * rd->per_step, v;
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(obj, "skipped");
    if (isfinite(v = watch_num(obj, "loss")) && !cJSON_IsTrue(sk)) TERN_TRY(push(&rd->r->train, x, v));
    if (isfinite(v = watch_num(obj, "val_loss"))) TERN_TRY(push(&rd->r->val, x, v));
    for (int t = 0; t < NTASK; t++)
        if (isfinite(v = watch_num(obj, task_keys[t]))) {
            double se = watch_num(obj, task_se_keys[t]);
            TERN_TRY(push(&rd->r->task[t], x, v));
            TERN_TRY(push(&rd->r->task_se[t], x, isfinite(se) && se > 0 ? se : 0));
        }
    return TERN_OK;
}

/* A positive whole number field of a JSON object, or 0. */
static double pos_int(const cJSON *j, const char *key) {
    double v = watch_num(j, key);
    return v >= 1 && v <= 1e15 && v == floor(v) ? v : 0;
}

/* Tokens a step: global batch x seq x grad_accum, the global batch from the latest checkpoint
 * (it stays when the number of ranks changes), else config.json's batch for one process. */
static tern_status tokens_per_step(const char *dir, double *out) {
    char *p = tern_path_join(dir, "config.json"), *text = NULL;
    size_t n;
    if (!p) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = tern_read_file(p, &text, &n);
    cJSON *j = st == TERN_OK ? cJSON_ParseWithLength(text, n) : NULL;
    double batch = pos_int(j, "batch"), seq = pos_int(j, "seq"), accum = pos_int(j, "grad_accum");
    if (st == TERN_OK && (!batch || !seq || !accum))
        st = tern_err(TERN_EFORMAT, "%s: not a run configuration (needs positive whole numbers batch, seq, grad_accum)", p);
    cJSON_Delete(j);
    free(text);
    free(p);
    TERN_TRY(st);
    char *ck = NULL, *state = NULL;
    if (tern_ckpt_latest(dir, &ck) == TERN_OK && tern_ckpt_read_state(ck, &state, NULL) == TERN_OK) {
        cJSON *s = cJSON_Parse(state);
        double gb = pos_int(s, "global_batch");
        if (gb) batch = gb;
        cJSON_Delete(s);
    }
    tern_err_clear();
    free(ck);
    free(state);
    *out = batch * seq * accum;
    return TERN_OK;
}

static tern_status read_run(const char *dir, int x_steps, run_data *r) {
    size_t k = strlen(dir);
    while (k > 1 && dir[k - 1] == '/') k--;
    const char *base = dir + k;
    while (base > dir && base[-1] != '/') base--;
    snprintf(r->name, sizeof r->name, "%.*s", (int)(dir + k - base), base);
    TERN_TRY(tokens_per_step(dir, &r->tokens_per_step));
    char *mp = tern_path_join(dir, "metrics.jsonl");
    if (!mp) return tern_err(TERN_ENOMEM, "out of memory");
    reading rd = {r, x_steps ? 1.0 : r->tokens_per_step};
    tern_status st = watch_read_metrics(mp, take_line, &rd, NULL);
    free(mp);
    return st;
}

/* ---- axes ---- */
typedef struct axis {
    double lo, hi, step; /* the range shown and the spacing of its ticks */
} axis;

/* 1, 2 or 5 times a power of ten, near range / target. */
static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* An axis over [lo, hi] with some room around the data (none below a zero that starts it). */
static axis make_axis(double lo, double hi, int target, int from_zero) {
    if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.05 : 0.5;
        lo -= d;
        hi += d;
    }
    double pad = (hi - lo) * 0.04;
    axis a = {from_zero ? lo : lo - pad, hi + pad, 0};
    a.step = nice_step(a.hi - a.lo, target);
    return a;
}

/* A tick label: compact for token counts (12k, 1.5M, 2G), plain otherwise. */
static void tick_label(char *out, size_t n, double v, double step, int si) {
    if (fabs(v) < step * 1e-6) {
        snprintf(out, n, "0");
        return;
    }
    const char *suf = "";
    double d = 1;
    if (si && fabs(step) >= 1e9) d = 1e9, suf = "G";
    else if (si && fabs(step) >= 1e6) d = 1e6, suf = "M";
    else if (si && fabs(step) >= 1e3) d = 1e3, suf = "k";
    double s = step / d;
    int dec = s >= 1 ? 0 : (int)ceil(-log10(s) - 1e-9);
    if (dec > 6) dec = 6;
    snprintf(out, n, "%.*f%s", dec, v / d, suf);
}

/* ---- drawing ---- */
typedef struct rect {
    double x0, y0, x1, y1; /* x0 left, y0 top */
} rect;

typedef struct panel {
    rect r;
    axis x, y;
} panel;

static double px(const panel *p, double x) { return p->r.x0 + (x - p->x.lo) / (p->x.hi - p->x.lo) * (p->r.x1 - p->r.x0); }
static double py(const panel *p, double y) { return p->r.y1 - (y - p->y.lo) / (p->y.hi - p->y.lo) * (p->r.y1 - p->r.y0); }

static const double palette[10][3] = {
    {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28}, {0x94, 0x67, 0xbd},
    {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x7f, 0x7f, 0x7f}, {0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf}}; /* matplotlib's tab10 */

static void set_color(cairo_t *cr, size_t run, double alpha) {
    const double *c = palette[run % 10];
    cairo_set_source_rgba(cr, c[0] / 255, c[1] / 255, c[2] / 255, alpha);
}

static void font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Text anchored at (x, y): ax 0 left, 0.5 centre, 1 right; ay likewise 0 top ... 1 bottom. */
static void text(cairo_t *cr, double x, double y, double ax, double ay, const char *s) {
    cairo_text_extents_t e;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, s, &e);
    cairo_font_extents(cr, &fe);
    double h = fe.ascent - fe.descent * 0.2;
    cairo_move_to(cr, x - e.x_advance * ax, y + h * (1 - ay));
    cairo_show_text(cr, s);
}

static void marker(cairo_t *cr, double x, double y, int shape, double r) {
    if (shape == 1) {
        cairo_rectangle(cr, x - r, y - r, 2 * r, 2 * r);
    } else if (shape == 2) {
        cairo_move_to(cr, x, y - r * 1.2);
        cairo_line_to(cr, x + r * 1.1, y + r * 0.8);
        cairo_line_to(cr, x - r * 1.1, y + r * 0.8);
        cairo_close_path(cr);
    } else {
        cairo_new_sub_path(cr);
        cairo_arc(cr, x, y, r, 0, 2 * M_PI);
    }
    cairo_fill(cr);
}

static void frame_and_ticks(cairo_t *cr, const panel *p, const char *xlabel, const char *ylabel, int si_x) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_rectangle(cr, p->r.x0, p->r.y0, p->r.x1 - p->r.x0, p->r.y1 - p->r.y0);
    cairo_fill(cr);
    font(cr, 12, 0);
    char lab[64];
    cairo_set_line_width(cr, 1);
    for (int pass = 0; pass < 2; pass++) { /* pass 0: x ticks, pass 1: y ticks */
        const axis *a = pass ? &p->y : &p->x;
        for (double v = ceil(a->lo / a->step - 1e-9) * a->step; v <= a->hi + a->step * 1e-9; v += a->step) {
            double c = pass ? py(p, v) : px(p, v);
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9); /* grid */
            if (pass) {
                cairo_move_to(cr, p->r.x0, c);
                cairo_line_to(cr, p->r.x1, c);
            } else {
                cairo_move_to(cr, c, p->r.y0);
                cairo_line_to(cr, c, p->r.y1);
            }
            cairo_stroke(cr);
            cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
            if (pass) {
                cairo_move_to(cr, p->r.x0 - 5, c);
                cairo_line_to(cr, p->r.x0, c);
            } else {
                cairo_move_to(cr, c, p->r.y1);
                cairo_line_to(cr, c, p->r.y1 + 5);
            }
            cairo_stroke(cr);
            tick_label(lab, sizeof lab, v, a->step, pass ? 0 : si_x);
            if (pass) text(cr, p->r.x0 - 8, c, 1, 0.5, lab);
            else text(cr, c, p->r.y1 + 8, 0.5, 0, lab);
        }
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, p->r.x0, p->r.y0, p->r.x1 - p->r.x0, p->r.y1 - p->r.y0);
    cairo_stroke(cr);
    font(cr, 13, 0);
    if (xlabel) text(cr, (p->r.x0 + p->r.x1) / 2, p->r.y1 + 28, 0.5, 0, xlabel);
    cairo_save(cr);
    cairo_translate(cr, p->r.x0 - 58, (p->r.y0 + p->r.y1) / 2);
    cairo_rotate(cr, -M_PI / 2);
    text(cr, 0, 0, 0.5, 0.5, ylabel);
    cairo_restore(cr);
}

static void polyline(cairo_t *cr, const panel *p, const double *x, const double *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i) cairo_line_to(cr, px(p, x[i]), py(p, y[i]));
        else cairo_move_to(cr, px(p, x[i]), py(p, y[i]));
    }
    cairo_stroke(cr);
}

/* A legend entry: a short line in the run's colour and style, then its text. */
typedef struct entry {
    size_t run;
    int dashed, shape; /* shape -1: no marker */
    double alpha, width;
    char text[260];
} entry;

/* Points of the series drawn in a panel, for placing its legend where it hides fewest. */
typedef struct pts {
    const series *s[3 * 64], *se[3 * 64]; /* se: the error bars' half-lengths, or NULL */
    size_t n;
} pts;

static size_t points_in(const panel *p, const pts *ps, double x0, double y0, double x1, double y1) {
    size_t k = 0;
    for (size_t i = 0; i < ps->n; i++)
        for (size_t j = 0; j < ps->s[i]->n; j++)
            for (int end = -1; end <= 1; end++) { /* the point and its error bar's ends */
                double d = ps->se[i] ? end * ps->se[i]->y[j] : 0, x = px(p, ps->s[i]->x[j]), y = py(p, ps->s[i]->y[j] + d);
                k += x >= x0 && x <= x1 && y >= y0 && y <= y1;
            }
    return k;
}

static void legend(cairo_t *cr, const panel *p, const entry *e, size_t n, const pts *ps) {
    if (!n) return;
    font(cr, 12, 0);
    double w = 0, lh = 18;
    for (size_t i = 0; i < n; i++) {
        cairo_text_extents_t te;
        cairo_text_extents(cr, e[i].text, &te);
        if (te.x_advance > w) w = te.x_advance;
    }
    double bw = w + 52, bh = lh * (double)n + 10, x = 0, y = 0;
    size_t best = (size_t)-1;
    for (int corner = 0; corner < 4; corner++) { /* top right, top left, bottom right, bottom left */
        double cx = corner & 1 ? p->r.x0 + 10 : p->r.x1 - bw - 10, cy = corner & 2 ? p->r.y1 - bh - 10 : p->r.y0 + 10;
        size_t k = points_in(p, ps, cx - 6, cy - 6, cx + bw + 6, cy + bh + 6);
        if (k < best) best = k, x = cx, y = cy;
    }
    cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
    cairo_rectangle(cr, x, y, bw, bh);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (size_t i = 0; i < n; i++) {
        double cy = y + 5 + lh * ((double)i + 0.5);
        set_color(cr, e[i].run, e[i].alpha);
        cairo_set_line_width(cr, e[i].width);
        double dash[] = {5, 3};
        cairo_set_dash(cr, dash, e[i].dashed ? 2 : 0, 0);
        cairo_move_to(cr, x + 8, cy);
        cairo_line_to(cr, x + 38, cy);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (e[i].shape >= 0) marker(cr, x + 23, cy, e[i].shape, 3.2);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text(cr, x + 46, cy, 0, 0.5, e[i].text);
    }
}

/* TensorBoard's smoothing: an exponential moving average, debiased at the start. */
static void smooth(const double *y, double *out, size_t n, double w) {
    double last = 0, weight = 0;
    for (size_t i = 0; i < n; i++) {
        last = last * w + (1 - w) * y[i];
        weight = weight * w + (1 - w);
        out[i] = last / weight;
    }
}

typedef struct writer {
    tern_afile af;
    tern_status st;
} writer;

static cairo_status_t write_out(void *closure, const unsigned char *data, unsigned int n) {
    writer *w = closure;
    if (w->st == TERN_OK) w->st = tern_afile_write(&w->af, data, n);
    return w->st == TERN_OK ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return 0;
    for (size_t i = 0; i < b; i++)
        if (tolower((unsigned char)s[a - b + i]) != suf[i]) return 0;
    return 1;
}

static void draw(cairo_t *cr, const run_data *runs, size_t n_runs, int W, int H, int with_tasks, const tern_plot_opts *o) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    font(cr, 17, 1);
    text(cr, W / 2.0, 14, 0.5, 0, o->title ? o->title : "Loss against tokens");
    const char *xlabel = o->x_steps ? "step" : "tokens";
    double top = 50, bottom = H - 60, split = with_tasks ? top + (bottom - top - 70) * 0.62 : bottom;
    panel loss = {{86, top, W - 24.0, split}, {0, 0, 0}, {0, 0, 0}};
    panel task = {{86, split + 70, W - 24.0, bottom}, {0, 0, 0}, {0, 0, 0}};
    double xmax = 0, ylo = INFINITY, yhi = -INFINITY, tlo = INFINITY, thi = -INFINITY;
    for (size_t r = 0; r < n_runs; r++) {
        const series *ss[] = {&runs[r].train, &runs[r].val};
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < ss[k]->n; i++) {
                xmax = fmax(xmax, ss[k]->x[i]);
                ylo = fmin(ylo, ss[k]->y[i]);
                yhi = fmax(yhi, ss[k]->y[i]);
            }
        for (int t = 0; with_tasks && t < NTASK; t++)
            for (size_t i = 0; i < runs[r].task[t].n; i++) {
                double se = runs[r].task_se[t].y[i];
                xmax = fmax(xmax, runs[r].task[t].x[i]);
                tlo = fmin(tlo, runs[r].task[t].y[i] - se);
                thi = fmax(thi, runs[r].task[t].y[i] + se);
                if (task_chance[t] > 0) tlo = fmin(tlo, task_chance[t]), thi = fmax(thi, task_chance[t]);
            }
    }
    loss.x = task.x = make_axis(0, xmax > 0 ? xmax : 1, 8, 1);
    loss.y = make_axis(isfinite(ylo) ? ylo : 0, isfinite(yhi) ? yhi : 1, 6, 0);
    frame_and_ticks(cr, &loss, with_tasks ? NULL : xlabel, "loss", !o->x_steps);
    entry ents[64];
    size_t ne = 0;
    pts ps = {{0}, {0}, 0};
    cairo_save(cr);
    cairo_rectangle(cr, loss.r.x0, loss.r.y0, loss.r.x1 - loss.r.x0, loss.r.y1 - loss.r.y0);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (size_t r = 0; r < n_runs; r++) {
        const series *tr = &runs[r].train, *va = &runs[r].val;
        if (ps.n + 2 <= sizeof ps.s / sizeof *ps.s) ps.se[ps.n] = ps.se[ps.n + 1] = NULL, ps.s[ps.n++] = tr, ps.s[ps.n++] = va;
        if (tr->n) {
            double *sm = o->smooth > 0 ? malloc(tr->n * sizeof *sm) : NULL;
            set_color(cr, r, sm ? 0.3 : 1);
            cairo_set_line_width(cr, sm ? 1 : 1.6);
            polyline(cr, &loss, tr->x, tr->y, tr->n);
            if (sm) {
                smooth(tr->y, sm, tr->n, o->smooth);
                set_color(cr, r, 1);
                cairo_set_line_width(cr, 1.8);
                polyline(cr, &loss, tr->x, sm, tr->n);
                free(sm);
            }
            if (ne < 64) {
                entry e = {r, 0, -1, 1, 1.8, ""};
                snprintf(e.text, sizeof e.text, "%s train%s", runs[r].name, o->smooth > 0 ? " (smoothed; raw faint)" : "");
                ents[ne++] = e;
            }
        }
        if (va->n) {
            set_color(cr, r, 1);
            cairo_set_line_width(cr, 2);
            double dash[] = {6, 4};
            cairo_set_dash(cr, dash, 2, 0);
            polyline(cr, &loss, va->x, va->y, va->n);
            cairo_set_dash(cr, NULL, 0, 0);
            for (size_t i = 0; i < va->n; i++) marker(cr, px(&loss, va->x[i]), py(&loss, va->y[i]), 0, 3.5);
            if (ne < 64) {
                entry e = {r, 1, 0, 1, 2, ""};
                snprintf(e.text, sizeof e.text, "%s val", runs[r].name);
                ents[ne++] = e;
            }
        }
    }
    cairo_restore(cr);
    legend(cr, &loss, ents, ne, &ps);
    if (!with_tasks) return;
    task.y = make_axis(tlo, thi, 5, 0);
    frame_and_ticks(cr, &task, xlabel, "accuracy", !o->x_steps);
    ne = 0;
    ps.n = 0;
    cairo_save(cr);
    cairo_rectangle(cr, task.r.x0, task.r.y0, task.r.x1 - task.r.x0, task.r.y1 - task.r.y0);
    cairo_clip(cr);
    for (int t = 0; t < NTASK; t++) {
        int any = 0;
        for (size_t r = 0; r < n_runs; r++) any |= runs[r].task[t].n > 0;
        if (!any || task_chance[t] <= 0) continue;
        double y = py(&task, task_chance[t]), dash[] = {2, 3};
        cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
        cairo_set_line_width(cr, 1);
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, task.r.x0, y);
        cairo_line_to(cr, task.r.x1, y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        char lab[80];
        snprintf(lab, sizeof lab, "%s chance %.2f", task_labels[t], task_chance[t]);
        font(cr, 11, 0);
        text(cr, task.r.x0 + 6, y - 3, 0, 1, lab);
    }
    for (size_t r = 0; r < n_runs; r++)
        for (int t = 0; t < NTASK; t++) {
            const series *s = &runs[r].task[t];
            if (!s->n) continue;
            if (ps.n < sizeof ps.s / sizeof *ps.s) ps.se[ps.n] = &runs[r].task_se[t], ps.s[ps.n++] = s;
            set_color(cr, r, 1);
            cairo_set_line_width(cr, 1.8);
            polyline(cr, &task, s->x, s->y, s->n);
            for (size_t i = 0; i < s->n; i++) marker(cr, px(&task, s->x[i]), py(&task, s->y[i]), t, 3.8);
            set_color(cr, r, 0.55); /* one standard error either side */
            cairo_set_line_width(cr, 1.2);
            for (size_t i = 0; i < s->n; i++) {
                double se = runs[r].task_se[t].y[i], x = px(&task, s->x[i]);
                if (!(se > 0)) continue;
                cairo_move_to(cr, x, py(&task, s->y[i] - se));
                cairo_line_to(cr, x, py(&task, s->y[i] + se));
                cairo_move_to(cr, x - 4, py(&task, s->y[i] - se));
                cairo_line_to(cr, x + 4, py(&task, s->y[i] - se));
                cairo_move_to(cr, x - 4, py(&task, s->y[i] + se));
                cairo_line_to(cr, x + 4, py(&task, s->y[i] + se));
            }
            cairo_stroke(cr);
            if (ne < 64) {
                entry e = {r, 0, t, 1, 1.8, ""};
                snprintf(e.text, sizeof e.text, "%s %s%s", runs[r].name, task_labels[t],
                         s->n && runs[r].task_se[t].y[0] > 0 ? " (± 1 s.e.)" : "");
                ents[ne++] = e;
            }
        }
    cairo_restore(cr);
    legend(cr, &task, ents, ne, &ps);
}

tern_status tern_plot_runs(const char *const *paths, size_t n_runs, const char *out, const tern_plot_opts *opts) {
    tern_plot_opts o = opts ? *opts : (tern_plot_opts){0};
    int png = ends_with(out, ".png");
    if (!png && !ends_with(out, ".svg")) return tern_err(TERN_EINVAL, "%s: the picture's name must end in .svg or .png", out);
    if (n_runs == 0) return tern_err(TERN_EINVAL, "no run folders to plot");
    if (!(o.smooth >= 0 && o.smooth < 1)) return tern_err(TERN_EINVAL, "smoothing must be in [0, 1), got %g", o.smooth);
    if (o.width < 0 || o.height < 0 || o.width > 20000 || o.height > 20000)
        return tern_err(TERN_EINVAL, "picture size %dx%d out of range (1 to 20000)", o.width, o.height);
    run_data *runs = calloc(n_runs, sizeof *runs);
    if (!runs) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = TERN_OK;
    size_t points = 0;
    int with_tasks = 0;
    for (size_t r = 0; r < n_runs && st == TERN_OK; r++) {
        st = read_run(paths[r], o.x_steps, &runs[r]);
        points += runs[r].train.n + runs[r].val.n;
        for (int t = 0; t < NTASK; t++) with_tasks |= !o.no_tasks && runs[r].task[t].n > 0;
        for (size_t q = 0; q < r && st == TERN_OK; q++) /* two runs of one name: tell them apart by their paths */
            if (!strcmp(runs[q].name, runs[r].name)) {
                snprintf(runs[q].name, sizeof runs[q].name, "%s", paths[q]);
                snprintf(runs[r].name, sizeof runs[r].name, "%s", paths[r]);
            }
    }
    if (st == TERN_OK && points == 0)
        st = tern_err(TERN_EINVAL, "%s%s: no loss to plot (metrics.jsonl has no step with a loss)", paths[0], n_runs > 1 ? " and the others" : "");
    int W = o.width ? o.width : 960, H = o.height ? o.height : with_tasks ? 860 : 540;
    writer w = {{0}, TERN_OK};
    if (st == TERN_OK) st = tern_afile_open(&w.af, out);
    if (st == TERN_OK) {
        cairo_surface_t *s = png ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H)
                                 : cairo_svg_surface_create_for_stream(write_out, &w, W, H);
        cairo_t *cr = cairo_create(s);
        draw(cr, runs, n_runs, W, H, with_tasks, &o);
        cairo_status_t cs = cairo_status(cr);
        cairo_destroy(cr);
        if (png && cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_write_to_png_stream(s, write_out, &w);
        cairo_surface_finish(s);
        if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(s);
        cairo_surface_destroy(s);
        if (w.st != TERN_OK) st = w.st;
        else if (cs != CAIRO_STATUS_SUCCESS) st = tern_err(TERN_EIO, "%s: cairo could not draw it: %s", out, cairo_status_to_string(cs));
        if (st == TERN_OK) st = tern_afile_commit(&w.af);
        else tern_afile_abort(&w.af);
    }
    for (size_t r = 0; r < n_runs; r++) {
        series_free(&runs[r].train);
        series_free(&runs[r].val);
        for (int t = 0; t < NTASK; t++) {
            series_free(&runs[r].task[t]);
            series_free(&runs[r].task_se[t]);
        }
    }
    free(runs);
    return st;
}
