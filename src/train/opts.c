/* The options of a training run, from one table (TERN_TRAIN_OPTS): defaults, setting from text
 * (flags) and from typed JSON (--config files and RUNDIR/config.json), checking, the resolved JSON
 * that a run folder keeps, --help, and what --resume does with options given again (the table's
 * kinds: RUN options change the run, FIXED ones are refused when they differ, CALL ones belong to
 * the invocation). */
#include "tern/train.h"

#include "train/train_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

enum {
#define X(key, type, kind, def, arg, help) OPT_##key,
    TERN_TRAIN_OPTS(X)
#undef X
        OPT_COUNT
};
_Static_assert(OPT_COUNT <= 128, "tern_train_opts.set is too small");

enum { KIND_RUN, KIND_FIXED, KIND_CALL };

/* One row of the table, for the functions below that walk it. */
typedef struct {
    const char *key, *arg, *help;
    char type; /* 'I', 'F', 'S' or 'B' */
    int kind;
    size_t off; /* of the field in tern_train_opts */
} opt_row;

static const opt_row rows[] = {
#define X(k, type, kind, def, arg, help) {#k, arg, help, #type[0], KIND_##kind, offsetof(tern_train_opts, k)},
    TERN_TRAIN_OPTS(X)
#undef X
};

static const opt_row *find_row(const char *key) {
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (!strcmp(rows[i].key, key)) return &rows[i];
    return NULL;
}

void tern_train_opts_defaults(tern_train_opts *o) {
    memset(o, 0, sizeof *o);
#define X(key, type, kind, def, arg, help) o->key = def;
    TERN_TRAIN_OPTS(X)
#undef X
}

void tern_train_opts_free(tern_train_opts *o) {
    for (int i = 0; i < o->n_owned; i++) free(o->owned[i]);
    o->n_owned = 0;
}

int tern_train_opts_known(const char *key) { return find_row(key) != NULL; }

int tern_train_opts_is_flag(const char *key) {
    const opt_row *r = find_row(key);
    return r && r->type == 'B';
}

/* The flag of a key: "--" + key with '_' -> '-'. */
static void flag_of(char *out, size_t n, const char *key) {
    size_t i = snprintf(out, n, "--") > 0 ? 2 : 0;
    for (const char *c = key; *c && i + 1 < n; c++) out[i++] = *c == '_' ? '-' : *c;
    out[i < n ? i : n - 1] = 0;
}

/* Whole numbers are kept within 2^53, since a run's config.json keeps numbers as JSON doubles: a
 * larger one would not read back. */
static tern_status whole(const char *key, double x, const char *text, long long *out) {
    if (!(fabs(x) <= 9007199254740992.0))
        return tern_err(TERN_EINVAL, "option %s must be at most 2^53 in magnitude, got '%s'", key, text);
    if (x != floor(x)) return tern_err(TERN_EINVAL, "option %s needs a whole number, got '%s'", key, text);
    *out = (long long)x;
    return TERN_OK;
}

static tern_status parse_int(const char *key, const char *v, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno == ERANGE) return tern_err(TERN_EINVAL, "option %s must be at most 2^53 in magnitude, got '%s'", key, v);
    if (errno || end == v || *end) return tern_err(TERN_EINVAL, "option %s needs a whole number, got '%s'", key, v);
    return whole(key, (double)x, v, out);
}

static tern_status parse_num(const char *key, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x)) return tern_err(TERN_EINVAL, "option %s needs a number, got '%s'", key, v);
    *out = x;
    return TERN_OK;
}

static tern_status parse_bool(const char *key, const char *v, int *out) {
    if (!strcmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
    } else if (!strcmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
    } else {
        return tern_err(TERN_EINVAL, "option %s needs true or false, got '%s'", key, v);
    }
    return TERN_OK;
}

static tern_status keep_string(tern_train_opts *o, const char *v, const char **dst) {
    if (!v) {
        *dst = NULL;
        return TERN_OK;
    }
    if (o->n_owned >= (int)(sizeof o->owned / sizeof o->owned[0])) return tern_err(TERN_EINVAL, "too many string options");
    char *s = strdup(v);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory");
    o->owned[o->n_owned++] = s;
    *dst = s;
    return TERN_OK;
}

#define FIELD(o, r, T) ((T *)((char *)(o) + (r)->off))

tern_status tern_train_opts_set(tern_train_opts *o, const char *key, const char *value) {
    const opt_row *r = find_row(key);
    if (!r) return tern_err(TERN_EINVAL, "unknown option '%s'", key);
    switch (r->type) {
    case 'I': TERN_TRY(parse_int(key, value, FIELD(o, r, long long))); break;
    case 'F': TERN_TRY(parse_num(key, value, FIELD(o, r, double))); break;
    case 'B': TERN_TRY(parse_bool(key, value, FIELD(o, r, int))); break;
    default: TERN_TRY(keep_string(o, value, FIELD(o, r, const char *))); break;
    }
    o->set[r - rows] = 1;
    return TERN_OK;
}

int tern_train_opts_is_set(const tern_train_opts *o, const char *key) {
    const opt_row *r = find_row(key);
    return r ? o->set[r - rows] : 0;
}

/* One JSON member into its option, by the option's type: a string (or null) for a text option, a
 * number for a numeric one (whole for an integer), true or false for a flag. */
static tern_status set_json(tern_train_opts *o, const opt_row *r, const cJSON *it, const char *path) {
    static const char *const want[] = {['I'] = "a whole number", ['F'] = "a number", ['S'] = "a string", ['B'] = "true or false"};
    const char *got = cJSON_IsString(it) ? "a string" : cJSON_IsNumber(it) ? "a number" : cJSON_IsBool(it) ? "a boolean"
                      : cJSON_IsNull(it) ? "null" : cJSON_IsArray(it) ? "an array" : "an object";
    int ok = r->type == 'S' ? cJSON_IsString(it) || cJSON_IsNull(it) : r->type == 'B' ? cJSON_IsBool(it) : cJSON_IsNumber(it);
    if (!ok) return tern_err(TERN_EINVAL, "%s: option \"%s\" must be %s, not %s", path, r->key, want[(int)r->type], got);
    char text[64];
    switch (r->type) {
    case 'I': {
        snprintf(text, sizeof text, "%.17g", it->valuedouble);
        tern_status st = whole(r->key, it->valuedouble, text, FIELD(o, r, long long));
        if (st != TERN_OK) return tern_err_wrap(st, "%s", path);
        break;
    }
    case 'F':
        if (!isfinite(it->valuedouble)) return tern_err(TERN_EINVAL, "%s: option \"%s\" must be a finite number", path, r->key);
        *FIELD(o, r, double) = it->valuedouble;
        break;
    case 'B': *FIELD(o, r, int) = cJSON_IsTrue(it); break;
    default: TERN_TRY(keep_string(o, cJSON_IsString(it) ? it->valuestring : NULL, FIELD(o, r, const char *))); break;
    }
    o->set[r - rows] = 1;
    return TERN_OK;
}

/* Reads a JSON object of options into o: members named like options, each once, of the option's
 * type; "model" and "history" (a run's resolved model and its changes, kept beside its options in
 * config.json) are passed over. Options already set (flags) keep their values when keep_set. */
static tern_status load_object(tern_train_opts *o, const cJSON *j, const char *path, int keep_set) {
    if (!cJSON_IsObject(j)) return tern_err(TERN_EFORMAT, "%s: not a JSON object of options", path);
    for (const cJSON *it = j->child; it; it = it->next) {
        for (const cJSON *e = j->child; e != it; e = e->next)
            if (!strcmp(e->string, it->string)) return tern_err(TERN_EINVAL, "%s: option \"%s\" is given twice", path, it->string);
        if (!strcmp(it->string, "model") || !strcmp(it->string, "history")) continue;
        const opt_row *r = find_row(it->string);
        if (!r) return tern_err(TERN_EINVAL, "%s: unknown option \"%s\"", path, it->string);
        if (keep_set && o->set[r - rows]) continue; /* a flag given on the command line wins */
        TERN_TRY(set_json(o, r, it, path));
    }
    return TERN_OK;
}

static tern_status read_json(const char *path, cJSON **out) {
    char *text;
    size_t n;
    TERN_TRY(tern_read_file(path, &text, &n));
    *out = cJSON_ParseWithLength(text, n);
    free(text);
    if (!*out) return tern_err(TERN_EFORMAT, "%s: not a JSON object of options", path);
    return TERN_OK;
}

tern_status tern_train_opts_load_json(tern_train_opts *o, const char *path) {
    cJSON *j;
    TERN_TRY(read_json(path, &j));
    tern_status st = load_object(o, j, path, 1);
    cJSON_Delete(j);
    return st;
}

tern_status tern_train_opts_check(const tern_train_opts *o) {
    static const struct { const char *name; size_t off; long long min; } ints[] = {
        {"n_layer", offsetof(tern_train_opts, n_layer), 1},       {"n_head", offsetof(tern_train_opts, n_head), 1},
        {"n_embd", offsetof(tern_train_opts, n_embd), 1},         {"seq", offsetof(tern_train_opts, seq), 1},
        {"n_ctx", offsetof(tern_train_opts, n_ctx), 0},           {"n_kv_head", offsetof(tern_train_opts, n_kv_head), 0},
        {"ffn_dim", offsetof(tern_train_opts, ffn_dim), 0},       {"vocab_size", offsetof(tern_train_opts, vocab_size), 0},
        {"steps", offsetof(tern_train_opts, steps), 1},           {"stop_at", offsetof(tern_train_opts, stop_at), 0},
        {"batch", offsetof(tern_train_opts, batch), 1},           {"grad_accum", offsetof(tern_train_opts, grad_accum), 1},
        {"warmup", offsetof(tern_train_opts, warmup), 0},         {"eval_every", offsetof(tern_train_opts, eval_every), 0},
        {"eval_batches", offsetof(tern_train_opts, eval_batches), 0}, {"ckpt_every", offsetof(tern_train_opts, ckpt_every), 0},
        {"threads", offsetof(tern_train_opts, threads), 0},       {"eval_task_every", offsetof(tern_train_opts, eval_task_every), 0},
        {"eval_task_limit", offsetof(tern_train_opts, eval_task_limit), 0}, {"tensorboard", offsetof(tern_train_opts, tensorboard), 0},
        {"keep", offsetof(tern_train_opts, keep), 1},             {"max_bad_steps", offsetof(tern_train_opts, max_bad_steps), 1},
        {"sample_every", offsetof(tern_train_opts, sample_every), 0}, {"sample_tokens", offsetof(tern_train_opts, sample_tokens), 1},
    };
    /* A text option with a default has no unset value: null (a config file's "schedule": null) is
     * refused here, before anything compares it. */
    tern_train_opts d;
    tern_train_opts_defaults(&d);
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (rows[i].type == 'S' && *FIELD(&d, &rows[i], const char *) && !*(const char *const *)((const char *)o + rows[i].off))
            return tern_err(TERN_EINVAL, "%s must be a %s (default %s), not null", rows[i].key, rows[i].arg, *FIELD(&d, &rows[i], const char *));
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long long v;
        memcpy(&v, (const char *)o + ints[i].off, sizeof v);
        if (v < ints[i].min)
            return ints[i].min ? tern_err(TERN_EINVAL, "%s must be at least %lld, got %lld", ints[i].name, ints[i].min, v)
                               : tern_err(TERN_EINVAL, "%s must not be negative, got %lld", ints[i].name, v);
    }
    if (o->zero != 0 && o->zero != 1)
        return tern_err(TERN_EINVAL, "--zero must be 0 (all-reduce the gradients) or 1 (ZeRO stage 1: shard AdamW's moments), got %lld",
                        o->zero);
    if (o->overlap != 0 && o->overlap != 1) return tern_err(TERN_EINVAL, "--overlap must be 0 or 1, got %lld", o->overlap);
    if (o->n_embd % o->n_head)
        return tern_err(TERN_EINVAL, "n_embd (%lld) must be divisible by n_head (%lld)", o->n_embd, o->n_head);
    if (strcmp(o->arch, "gpt2") && strcmp(o->arch, "llama"))
        return tern_err(TERN_EINVAL, "arch must be gpt2 or llama, got '%s'", o->arch);
    if (o->n_kv_head && o->n_head % o->n_kv_head)
        return tern_err(TERN_EINVAL, "n_kv_head (%lld) must divide n_head (%lld)", o->n_kv_head, o->n_head);
    if (!(o->rope_theta > 1)) return tern_err(TERN_EINVAL, "rope_theta must be above 1, got %g", o->rope_theta);
    if (!(o->norm_eps > 0 && o->norm_eps < 1)) return tern_err(TERN_EINVAL, "norm_eps must be in (0, 1), got %g", o->norm_eps);
    if (!strcmp(o->arch, "gpt2") && (o->n_kv_head && o->n_kv_head != o->n_head))
        return tern_err(TERN_EINVAL, "--n-kv-head is llama's: GPT-2 has as many key/value heads as heads");
    if (!strcmp(o->arch, "gpt2") && (o->qkv_bias || o->tie_embeddings))
        return tern_err(TERN_EINVAL, "--qkv-bias and --tie-embeddings are llama's options: GPT-2's q, k, v have biases and its head is tied");
    if (o->time_limit < 0) return tern_err(TERN_EINVAL, "time_limit must not be negative, got %g", o->time_limit);
    if (!(o->lr > 0)) return tern_err(TERN_EINVAL, "lr must be positive, got %g", o->lr);
    if (o->min_lr < 0 && o->min_lr != -1) return tern_err(TERN_EINVAL, "min_lr must not be negative (-1: lr/10), got %g", o->min_lr);
    if (strcmp(o->schedule, "constant") && strcmp(o->schedule, "cosine"))
        return tern_err(TERN_EINVAL, "schedule must be constant or cosine, got '%s'", o->schedule);
    if (strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16") && strcmp(o->precision, "auto"))
        return tern_err(TERN_EINVAL, "precision must be fp32, bf16 or auto, got '%s'", o->precision);
    if (o->weight_decay < 0) return tern_err(TERN_EINVAL, "weight_decay must not be negative, got %g", o->weight_decay);
    if (o->beta1 < 0 || o->beta1 >= 1) return tern_err(TERN_EINVAL, "beta1 must be in [0, 1), got %g", o->beta1);
    if (o->beta2 < 0 || o->beta2 >= 1) return tern_err(TERN_EINVAL, "beta2 must be in [0, 1), got %g", o->beta2);
    if (!(o->eps > 0)) return tern_err(TERN_EINVAL, "eps must be positive, got %g", o->eps);
    if (o->grad_clip < 0) return tern_err(TERN_EINVAL, "grad_clip must not be negative, got %g", o->grad_clip);
    if (o->run_id) {
        size_t n = strlen(o->run_id), ok = n >= 1 && n <= 64;
        for (size_t i = 0; ok && i < n; i++) {
            char c = o->run_id[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.';
        }
        if (!ok) return tern_err(TERN_EINVAL, "run_id must be 1 to 64 letters, digits, '-', '_' or '.', got '%s'", o->run_id);
    }
    return TERN_OK;
}

/* An option's value as JSON. */
static cJSON *value_json(const tern_train_opts *o, const opt_row *r) {
    switch (r->type) {
    case 'I': return cJSON_CreateNumber((double)*FIELD(o, r, long long));
    case 'F': return cJSON_CreateNumber(*FIELD(o, r, double));
    case 'B': return cJSON_CreateBool(*FIELD(o, r, int));
    default: {
        const char *s = *FIELD(o, r, const char *);
        return s ? cJSON_CreateString(s) : cJSON_CreateNull();
    }
    }
}

char *tern_train_opts_to_json(const tern_train_opts *o) {
    cJSON *j = cJSON_CreateObject();
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (rows[i].kind != KIND_CALL) cJSON_AddItemToObject(j, rows[i].key, value_json(o, &rows[i]));
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

/* A number as the shortest text that reads back as it (0.002, not 0.0020000000000000000416; whole
 * numbers without an exponent). */
static void fmt_num(char *out, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15) { /* 10000, not 1e+04 */
        snprintf(out, n, "%.0f", v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(out, n, "%.*g", p, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* An option's value as text for messages and --help: numbers as above, flags true/false, a
 * missing string "none". */
static void value_text(char *out, size_t n, const tern_train_opts *o, const opt_row *r) {
    switch (r->type) {
    case 'I': snprintf(out, n, "%lld", *FIELD(o, r, long long)); break;
    case 'F': fmt_num(out, n, *FIELD(o, r, double)); break;
    case 'B': snprintf(out, n, "%s", *FIELD(o, r, int) ? "true" : "false"); break;
    default: {
        const char *s = *FIELD(o, r, const char *);
        snprintf(out, n, "%s", s ? s : "none");
    }
    }
}

static int same_value(const tern_train_opts *a, const tern_train_opts *b, const opt_row *r) {
    switch (r->type) {
    case 'I': return *FIELD(a, r, long long) == *FIELD(b, r, long long);
    case 'F': return *FIELD(a, r, double) == *FIELD(b, r, double);
    case 'B': return !*FIELD(a, r, int) == !*FIELD(b, r, int);
    default: {
        const char *x = *FIELD(a, r, const char *), *y = *FIELD(b, r, const char *);
        return x == y || (x && y && !strcmp(x, y));
    }
    }
}

tern_status train_opts_resume(tern_train_opts *o, const char *cfgpath, cJSON **changes, cJSON **history) {
    *changes = *history = NULL;
    cJSON *j;
    TERN_TRY(read_json(cfgpath, &j));
    tern_train_opts run;
    tern_train_opts_defaults(&run);
    tern_status st = load_object(&run, j, cfgpath, 0);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "history");
    if (st == TERN_OK && h && !cJSON_IsArray(h)) st = tern_err(TERN_EFORMAT, "%s: \"history\" must be an array", cfgpath);
    *history = st == TERN_OK ? (h ? cJSON_Duplicate(h, 1) : cJSON_CreateArray()) : NULL;
    *changes = cJSON_CreateArray();
    if (st == TERN_OK && (!*history || !*changes)) st = tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; st == TERN_OK && i < OPT_COUNT; i++) {
        const opt_row *r = &rows[i];
        if (r->kind == KIND_CALL) continue;
        if (!o->set[i]) {
            /* not given now: the run's value */
            if (r->type == 'S') st = keep_string(o, *FIELD(&run, r, const char *), FIELD(o, r, const char *));
            else memcpy((char *)o + r->off, (char *)&run + r->off, r->type == 'B' ? sizeof(int) : 8);
            continue;
        }
        /* the tokenizer is compared by content (train.c), not by the folder's name */
        if (same_value(o, &run, r) || !strcmp(r->key, "tokenizer")) continue;
        char flag[48], now[256], was[256];
        flag_of(flag, sizeof flag, r->key);
        value_text(now, sizeof now, o, r);
        value_text(was, sizeof was, &run, r);
        if (r->kind == KIND_FIXED) {
            st = tern_err(TERN_EINVAL, "%s %s differs from the run's %s (it is fixed when a run starts; start a new run to change it)",
                          flag, now, was);
            break;
        }
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "key", r->key);
        cJSON_AddItemToObject(c, "from", value_json(&run, r));
        cJSON_AddItemToObject(c, "to", value_json(o, r));
        cJSON_AddItemToArray(*changes, c);
    }
    tern_train_opts_free(&run);
    cJSON_Delete(j);
    if (st != TERN_OK) {
        cJSON_Delete(*changes);
        cJSON_Delete(*history);
        *changes = *history = NULL;
    }
    return st;
}

void train_change_text(char *out, size_t n, const cJSON *change) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(change, "key");
    char v[2][256];
    for (int i = 0; i < 2; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(change, i ? "to" : "from");
        if (cJSON_IsNumber(x)) fmt_num(v[i], sizeof v[i], x->valuedouble);
        else if (cJSON_IsString(x)) snprintf(v[i], sizeof v[i], "%s", x->valuestring);
        else if (cJSON_IsBool(x)) snprintf(v[i], sizeof v[i], "%s", cJSON_IsTrue(x) ? "true" : "false");
        else snprintf(v[i], sizeof v[i], "none");
    }
    snprintf(out, n, "%s %s -> %s", cJSON_IsString(k) ? k->valuestring : "?", v[0], v[1]);
}

/* --help: each option's flag and value, its text wrapped at 100 columns, its default (numbers,
 * and text options that have one) and how --resume treats it. */
void tern_train_opts_help(FILE *f) {
    tern_train_opts d;
    tern_train_opts_defaults(&d);
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const opt_row *r = &rows[i];
        char flag[48], head[96], text[700], def[300] = "";
        flag_of(flag, sizeof flag, r->key);
        snprintf(head, sizeof head, "%s%s%s%s", !strcmp(r->key, "out") ? "-o, " : "", flag, r->arg[0] ? " " : "", r->arg);
        if (r->type != 'B' && (r->type != 'S' || *FIELD(&d, r, const char *))) {
            char v[256];
            value_text(v, sizeof v, &d, r);
            snprintf(def, sizeof def, "default %s", v);
        }
        /* (where the run is, and --resume itself, need no word on resuming) */
        int plain = !strcmp(r->key, "out") || !strcmp(r->key, "resume");
        const char *when = plain ? "" : r->kind == KIND_FIXED ? "fixed when the run starts" : r->kind == KIND_CALL ? "this invocation only" : "";
        snprintf(text, sizeof text, "%s%s%s%s%s%s", r->help, def[0] || when[0] ? " (" : "", def, def[0] && when[0] ? "; " : "", when,
                 def[0] || when[0] ? ")" : "");
        /* the text after a 26-column head (on a line of its own when longer), in lines of at
         * most 100 columns */
        if (strlen(head) < 24) fprintf(f, "  %-24s", head);
        else fprintf(f, "  %s\n%26s", head, "");
        size_t col = 26;
        const char *p = text;
        int first = 1;
        while (*p) {
            const char *sp = strchr(p, ' ');
            size_t w = sp ? (size_t)(sp - p) : strlen(p);
            if (!first && col + 1 + w > 100) {
                fprintf(f, "\n%26s", "");
                col = 26;
                first = 1;
            }
            if (!first) fputc(' ', f), col++;
            fwrite(p, 1, w, f);
            col += w;
            first = 0;
            p += w;
            while (*p == ' ') p++;
        }
        fputc('\n', f);
    }
}
