/* Opening a model wherever it lives: a run folder (config.json + ckpt/), a Hugging Face GPT-2
 * folder, or a GGUF file of type f32. The commands that read models (eval, sample, export) all
 * go through here. */
#include "tern/io.h"
#include "tern/gguf.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int get_int(cJSON *j, const char *k, int *out) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    /* a whole number in int's range (checked first: converting one outside it is undefined) */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= INT_MIN && v->valuedouble <= INT_MAX) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return 0;
    *out = (int)v->valuedouble;
    return 1;
}

static tern_status open_run(const char *dir, long long step, tern_gpt2 **out, const tern_key *key) {
    char *cfgp = tern_path_join(dir, "config.json"), *ck = NULL, *text = NULL;
    size_t n;
    tern_status st = cfgp ? tern_read_file(cfgp, &text, &n) : tern_err(TERN_ENOMEM, "out of memory");
    cJSON *j = st == TERN_OK ? cJSON_ParseWithLength(text, n) : NULL;
    tern_gpt2_config c = {0};
    if (st == TERN_OK && (!get_int(j, "n_layer", &c.n_layer) || !get_int(j, "n_head", &c.n_head) ||
                          !get_int(j, "n_embd", &c.n_embd) || !get_int(j, "n_ctx", &c.n_ctx) ||
                          !get_int(j, "vocab_size", &c.vocab_size)))
        st = tern_err(TERN_EFORMAT, "%s: not a run configuration (needs n_layer, n_head, n_embd, n_ctx, vocab_size)", cfgp);
    /* a sealed run's checkpoints are sealed to its run id (docs/SECURITY.md) */
    const cJSON *rid = j ? cJSON_GetObjectItemCaseSensitive(j, "run_id") : NULL;
    if (st == TERN_OK && key && !cJSON_IsString(rid))
        st = tern_err(TERN_EFORMAT, "%s: has no \"run_id\", so it is not a sealed run, but a key was given", cfgp);
    if (st == TERN_OK) st = tern_ckpt_set_seal(key, key ? rid->valuestring : NULL);
    cJSON_Delete(j);
    free(text);
    if (st == TERN_OK) st = step > 0 ? tern_ckpt_at_step(dir, (uint64_t)step, &ck) : tern_ckpt_latest(dir, &ck);
    if (st == TERN_OK && (st = tern_gpt2_config_check(&c)) != TERN_OK) tern_err_wrap(st, "%s", cfgp);
    if (st == TERN_OK) {
        /* The checkpoint must come near holding the model config.json describes (it keeps 4 bytes
         * a parameter) before that model is allocated, as tern_io_load_hf checks: a small
         * config.json must not make tern allocate and zero gigabytes. */
        char *mp = tern_path_join(ck, "model.safetensors");
        struct stat sb;
        size_t need = tern_gpt2_config_num_params(&c);
        if (!mp) st = tern_err(TERN_ENOMEM, "out of memory");
        else if (stat(mp, &sb) == 0 && need > (size_t)sb.st_size)
            st = tern_err(TERN_EFORMAT, "%s: describes a GPT-2 of %zu parameters, but %s has %lld bytes", cfgp, need, mp,
                          (long long)sb.st_size);
        free(mp);
    }
    tern_gpt2 *m = NULL;
    if (st == TERN_OK) st = tern_gpt2_init(&m, &c);
    if (st == TERN_OK) st = tern_ckpt_load_model(ck, m);
    tern_ckpt_set_seal(NULL, NULL);
    free(ck);
    free(cfgp);
    if (st != TERN_OK) {
        tern_gpt2_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

tern_status tern_io_open_model(const char *path, long long step, tern_gpt2 **out, char **tokdir) {
    return tern_io_open_model_key(path, step, out, tokdir, NULL);
}

tern_status tern_io_open_model_key(const char *path, long long step, tern_gpt2 **out, char **tokdir, const tern_key *key) {
    *out = NULL;
    if (tokdir) *tokdir = NULL;
    struct stat sb; /* a file, not a folder: GGUF (gguf_gpt2.c checks its magic) */
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (step > 0) return tern_err(TERN_EINVAL, "%s: a GGUF file has no steps to choose from", path);
        return tern_gguf_open_model(path, out, tokdir);
    }
    char *ckpt = tern_path_join(path, "ckpt"), *hfm = tern_path_join(path, "model.safetensors");
    if (!ckpt || !hfm) {
        free(ckpt);
        free(hfm);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    int is_run = tern_path_exists(ckpt), is_hf = tern_path_exists(hfm);
    free(ckpt);
    free(hfm);
    tern_status st;
    if (is_run) {
        st = open_run(path, step, out, key);
        if (st == TERN_OK && tokdir && !(*tokdir = tern_path_join(path, "tokenizer"))) st = tern_err(TERN_ENOMEM, "out of memory");
    } else if (is_hf) {
        if (step > 0) return tern_err(TERN_EINVAL, "%s: a Hugging Face folder has no steps to choose from", path);
        st = tern_io_load_hf(path, out);
        if (st == TERN_OK && tokdir && !(*tokdir = strdup(path))) st = tern_err(TERN_ENOMEM, "out of memory");
    } else if (!tern_path_exists(path)) {
        return tern_err(TERN_ENOTFOUND, "%s: no such file or folder", path);
    } else {
        return tern_err(TERN_EFORMAT, "%s: neither a run folder (with ckpt/) nor a Hugging Face folder (with model.safetensors)",
                        path);
    }
    if (st != TERN_OK) {
        tern_gpt2_free(*out);
        *out = NULL;
        if (tokdir) {
            free(*tokdir);
            *tokdir = NULL;
        }
    }
    return st;
}
