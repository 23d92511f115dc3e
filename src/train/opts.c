/* The options of a training run, from one table (TERN_TRAIN_OPTS): defaults, setting from text
 * (flags and JSON alike), checking, and the resolved JSON that a run folder keeps. */
#include "tern/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

enum {
#define X(key, type, def, help) OPT_##key,
    TERN_TRAIN_OPTS(X)
#undef X
        OPT_COUNT
};
_Static_assert(OPT_COUNT <= 64, "tern_train_opts.set is too small");

void tern_train_opts_defaults(tern_train_opts *o) {
    memset(o, 0, sizeof *o);
#define X(key, type, def, help) o->key = def;
    TERN_TRAIN_OPTS(X)
#undef X
}

void tern_train_opts_free(tern_train_opts *o) {
    for (int i = 0; i < o->n_owned; i++) free(o->owned[i]);
    o->n_owned = 0;
}

static tern_status parse_int(const char *key, const char *v, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end) return tern_err(TERN_EINVAL, "option %s needs a whole number, got '%s'", key, v);
    /* a run's config.json keeps numbers as JSON doubles: a larger one would not read back */
    if (x > (1LL << 53) || x < -(1LL << 53))
        return tern_err(TERN_EINVAL, "option %s must be at most 2^53 in magnitude, got '%s'", key, v);
    *out = x;
    return TERN_OK;
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
    if (o->n_owned >= (int)(sizeof o->owned / sizeof o->owned[0])) return tern_err(TERN_EINVAL, "too many string options");
    char *s = strdup(v);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory");
    o->owned[o->n_owned++] = s;
    *dst = s;
    return TERN_OK;
}

#define SET_I(key) parse_int(#key, value, &o->key)
#define SET_F(key) parse_num(#key, value, &o->key)
#define SET_S(key) keep_string(o, value, &o->key)
#define SET_B(key) parse_bool(#key, value, &o->key)

tern_status tern_train_opts_set(tern_train_opts *o, const char *key, const char *value) {
#define X(k, type, def, help)                                                                 \
    if (!strcmp(key, #k)) {                                                                   \
        TERN_TRY(SET_##type(k));                                                              \
        o->set[OPT_##k] = 1;                                                                  \
        return TERN_OK;                                                                       \
    }
    TERN_TRAIN_OPTS(X)
#undef X
    return tern_err(TERN_EINVAL, "unknown option '%s'", key);
}

int tern_train_opts_is_set(const tern_train_opts *o, const char *key) {
#define X(k, type, def, help)                                                                 \
    if (!strcmp(key, #k)) return o->set[OPT_##k];
    TERN_TRAIN_OPTS(X)
#undef X
    return 0;
}

tern_status tern_train_opts_load_json(tern_train_opts *o, const char *path) {
    char *text;
    size_t n;
    TERN_TRY(tern_read_file(path, &text, &n));
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return tern_err(TERN_EFORMAT, "%s: not a JSON object of options", path);
    }
    tern_status st = TERN_OK;
    for (cJSON *it = j->child; it && st == TERN_OK; it = it->next) {
        int idx = -1;
#define X(k, type, def, help)                                                                 \
    if (!strcmp(it->string, #k)) idx = OPT_##k;
        TERN_TRAIN_OPTS(X)
#undef X
        if (idx < 0 && !strcmp(it->string, "model")) continue; /* a run's resolved model, written beside its options */
        if (idx < 0) {
            st = tern_err(TERN_EINVAL, "%s: unknown option \"%s\"", path, it->string);
            break;
        }
        if (o->set[idx]) continue; /* a flag given on the command line wins */
        char buf[64];
        const char *v;
        if (cJSON_IsString(it)) {
            v = it->valuestring;
        } else if (cJSON_IsBool(it)) {
            v = cJSON_IsTrue(it) ? "true" : "false";
        } else if (cJSON_IsNumber(it)) {
            snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
            v = buf;
        } else if (cJSON_IsNull(it)) {
            continue;
        } else {
            st = tern_err(TERN_EINVAL, "%s: option \"%s\" must be a string, number or boolean", path, it->string);
            break;
        }
        st = tern_train_opts_set(o, it->string, v);
        if (st != TERN_OK) tern_err_wrap(st, "%s", path);
    }
    cJSON_Delete(j);
    return st;
}

tern_status tern_train_opts_check(const tern_train_opts *o) {
    if (o->n_ctx < 0) return tern_err(TERN_EINVAL, "n_ctx must not be negative");
    if (o->n_layer < 1 || o->n_head < 1 || o->n_embd < 1 || o->seq < 1)
        return tern_err(TERN_EINVAL, "n_layer, n_head, n_embd and seq must be positive");
    if (o->n_embd % o->n_head)
        return tern_err(TERN_EINVAL, "n_embd (%lld) must be divisible by n_head (%lld)", o->n_embd, o->n_head);
    if (strcmp(o->arch, "gpt2") && strcmp(o->arch, "llama"))
        return tern_err(TERN_EINVAL, "arch must be gpt2 or llama, got '%s'", o->arch);
    if (o->n_kv_head < 0 || (o->n_kv_head && o->n_head % o->n_kv_head))
        return tern_err(TERN_EINVAL, "n_kv_head (%lld) must divide n_head (%lld)", o->n_kv_head, o->n_head);
    if (o->ffn_dim < 0) return tern_err(TERN_EINVAL, "ffn_dim must not be negative");
    if (!(o->rope_theta > 1)) return tern_err(TERN_EINVAL, "rope_theta must be above 1, got %g", o->rope_theta);
    if (!(o->norm_eps > 0 && o->norm_eps < 1)) return tern_err(TERN_EINVAL, "norm_eps must be in (0, 1), got %g", o->norm_eps);
    if (!strcmp(o->arch, "gpt2") && (o->n_kv_head && o->n_kv_head != o->n_head))
        return tern_err(TERN_EINVAL, "--n-kv-head is llama's: GPT-2 has as many key/value heads as heads");
    if (!strcmp(o->arch, "gpt2") && (o->qkv_bias || o->tie_embeddings))
        return tern_err(TERN_EINVAL, "--qkv-bias and --tie-embeddings are llama's options: GPT-2's q, k, v have biases and its head is tied");
    if (o->steps < 1) return tern_err(TERN_EINVAL, "steps must be at least 1, got %lld", o->steps);
    if (o->stop_at < 0) return tern_err(TERN_EINVAL, "stop_at must not be negative");
    if (o->time_limit < 0) return tern_err(TERN_EINVAL, "time_limit must not be negative");
    if (o->batch < 1) return tern_err(TERN_EINVAL, "batch must be at least 1, got %lld", o->batch);
    if (o->grad_accum < 1) return tern_err(TERN_EINVAL, "grad_accum must be at least 1, got %lld", o->grad_accum);
    if (!(o->lr > 0)) return tern_err(TERN_EINVAL, "lr must be positive, got %g", o->lr);
    if (o->warmup < 0) return tern_err(TERN_EINVAL, "warmup must not be negative");
    if (strcmp(o->schedule, "constant") && strcmp(o->schedule, "cosine"))
        return tern_err(TERN_EINVAL, "schedule must be constant or cosine, got '%s'", o->schedule);
    if (strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16") && strcmp(o->precision, "auto"))
        return tern_err(TERN_EINVAL, "precision must be fp32, bf16 or auto, got '%s'", o->precision);
    if (o->weight_decay < 0 || o->beta1 < 0 || o->beta1 >= 1 || o->beta2 < 0 || o->beta2 >= 1 || !(o->eps > 0))
        return tern_err(TERN_EINVAL, "AdamW needs weight_decay >= 0, 0 <= beta1, beta2 < 1 and eps > 0");
    if (o->grad_clip < 0) return tern_err(TERN_EINVAL, "grad_clip must not be negative");
    static const struct { const char *name; size_t off; } nonneg[] = {
        {"eval_every", offsetof(tern_train_opts, eval_every)},     {"eval_batches", offsetof(tern_train_opts, eval_batches)},
        {"ckpt_every", offsetof(tern_train_opts, ckpt_every)},     {"threads", offsetof(tern_train_opts, threads)},
        {"eval_task_every", offsetof(tern_train_opts, eval_task_every)}, {"eval_task_limit", offsetof(tern_train_opts, eval_task_limit)},
        {"tensorboard", offsetof(tern_train_opts, tensorboard)},
    };
    for (size_t i = 0; i < sizeof nonneg / sizeof nonneg[0]; i++) {
        long long v;
        memcpy(&v, (const char *)o + nonneg[i].off, sizeof v);
        if (v < 0) return tern_err(TERN_EINVAL, "%s must not be negative, got %lld", nonneg[i].name, v);
    }
    if (o->keep < 1) return tern_err(TERN_EINVAL, "keep must be at least 1, got %lld", o->keep);
    if (o->max_bad_steps < 1) return tern_err(TERN_EINVAL, "max_bad_steps must be at least 1");
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

/* Options that belong to one invocation, not to the run: never saved in config.json, so that a
 * resumed run does not stop again where the first invocation was told to, and goes on on whatever
 * device the machine it resumes on has. */
static int per_invocation(const char *key) {
    return !strcmp(key, "stop_at") || !strcmp(key, "resume") || !strcmp(key, "time_limit") || !strcmp(key, "key") ||
           !strcmp(key, "passphrase_file") || !strcmp(key, "device") || !strcmp(key, "precision");
}

char *tern_train_opts_to_json(const tern_train_opts *o) {
    cJSON *j = cJSON_CreateObject();
#define ADD_I(k) cJSON_AddNumberToObject(j, #k, (double)o->k)
#define ADD_F(k) cJSON_AddNumberToObject(j, #k, o->k)
#define ADD_S(k) (o->k ? cJSON_AddStringToObject(j, #k, o->k) : cJSON_AddNullToObject(j, #k))
#define ADD_B(k) cJSON_AddBoolToObject(j, #k, o->k)
#define X(k, type, def, help)                                                                 \
    if (!per_invocation(#k)) ADD_##type(k);
    TERN_TRAIN_OPTS(X)
#undef X
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

void tern_train_opts_help(FILE *f) {
#define X(k, type, def, help)                                                                 \
    {                                                                                         \
        char flag[40] = "--";                                                                 \
        size_t i = 2;                                                                         \
        for (const char *c = #k; *c && i < sizeof flag - 1; c++) flag[i++] = *c == '_' ? '-' : *c; \
        flag[i] = 0;                                                                          \
        fprintf(f, "  %-16s %s\n", flag, help);                                               \
    }
    TERN_TRAIN_OPTS(X)
#undef X
}
