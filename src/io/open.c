/* Opening a model wherever it lives: a run folder (config.json + ckpt/), a Hugging Face folder,
 * or a GGUF file of type f32. The commands that read models (eval, sample, export) all
 * go through here. */
#include "tern/io.h"
#include "tern/gguf.h"
#include "tern/json.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

tern_status tern_io_run_model_config(const char *rundir, tern_model_config *c) {
    char *cfgp = tern_path_join(rundir, "config.json");
    if (!cfgp) return tern_err(TERN_ENOMEM, "out of memory");
    cJSON *j = NULL;
    tern_status st = tern_json_load(&j, cfgp);
    const cJSON *model = st == TERN_OK ? cJSON_GetObjectItemCaseSensitive(j, "model") : NULL;
    if (st == TERN_OK && model) {
        st = tern_model_config_from_json(c, model, cfgp);
    } else if (st == TERN_OK) {
        /* runs from before the model was recorded: GPT-2 of the options' shape */
        int v[5] = {0};
        static const char *const keys[] = {"n_layer", "n_head", "n_embd", "n_ctx", "vocab_size"};
        for (int i = 0; st == TERN_OK && i < 5; i++) {
            long x = 0;
            st = tern_json_long(j, keys[i], 1, INT_MIN, INT_MAX, &x, cfgp);
            v[i] = (int)x;
        }
        if (st != TERN_OK)
            st = tern_err(TERN_EFORMAT, "%s: not a run configuration (needs \"model\", or n_layer, n_head, n_embd, n_ctx and "
                                        "vocab_size as whole numbers)", cfgp);
        else {
            *c = tern_model_config_gpt2(v[0], v[1], v[2], v[3], v[4]);
            if ((st = tern_model_config_check(c)) != TERN_OK) tern_err_wrap(st, "%s", cfgp);
        }
    }
    cJSON_Delete(j);
    free(cfgp);
    return st;
}

/* The run id in a run's config.json ("" when it has none). */
static tern_status run_id_of(const char *dir, char *out, size_t n) {
    out[0] = 0;
    char *cfgp = tern_path_join(dir, "config.json");
    if (!cfgp) return tern_err(TERN_ENOMEM, "out of memory");
    cJSON *j = NULL;
    tern_status st = tern_json_load(&j, cfgp);
    const cJSON *rid = j ? cJSON_GetObjectItemCaseSensitive(j, "run_id") : NULL;
    if (st == TERN_OK && cJSON_IsString(rid)) snprintf(out, n, "%s", rid->valuestring);
    cJSON_Delete(j);
    free(cfgp);
    return st;
}

static tern_status open_run(const char *dir, long long step, tern_model **out, const tern_key *key, tern_backend *be) {
    tern_model_config c;
    char run_id[80], *ck = NULL;
    TERN_TRY(tern_io_run_model_config(dir, &c));
    TERN_TRY(run_id_of(dir, run_id, sizeof run_id));
    /* a sealed run's checkpoints are sealed to its run id (docs/SECURITY.md) */
    if (key && !run_id[0]) return tern_err(TERN_EFORMAT, "%s/config.json: has no \"run_id\", so it is not a sealed run, but a key was given", dir);
    tern_ckpt_seal seal = {key, run_id};
    tern_status st = step > 0 ? tern_ckpt_at_step(dir, (uint64_t)step, &ck) : tern_ckpt_latest(dir, &ck);
    if (st == TERN_OK) {
        /* The checkpoint must come near holding the model config.json describes (it keeps 4 bytes
         * a parameter) before that model is allocated, as tern_io_load_hf checks: a small
         * config.json must not make tern allocate and zero gigabytes. */
        char *mp = tern_path_join(ck, "model.safetensors");
        struct stat sb;
        size_t need = tern_model_config_num_params(&c);
        if (!mp) st = tern_err(TERN_ENOMEM, "out of memory");
        else if (stat(mp, &sb) == 0 && need > (size_t)sb.st_size)
            st = tern_err(TERN_EFORMAT, "%s/config.json: describes a %s of %zu parameters, but %s has %lld bytes", dir, c.arch, need,
                          mp, (long long)sb.st_size);
        free(mp);
    }
    tern_model *m = NULL;
    if (st == TERN_OK) st = tern_model_init(&m, &c, be);
    if (st == TERN_OK) st = tern_ckpt_load_model(ck, m, &seal);
    free(ck);
    if (st != TERN_OK) {
        tern_model_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

tern_status tern_io_open_model(const char *path, long long step, tern_model **out, char **tokdir, const tern_key *key,
                               tern_backend *be) {
    *out = NULL;
    if (tokdir) *tokdir = NULL;
    struct stat sb; /* a file, not a folder: GGUF (gguf_gpt2.c checks its magic) */
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (step > 0) return tern_err(TERN_EINVAL, "%s: a GGUF file has no steps to choose from", path);
        return tern_gguf_open_model(path, out, tokdir, be);
    }
    char *ckpt = tern_path_join(path, "ckpt"), *hfm = tern_path_join(path, "model.safetensors");
    if (!ckpt || !hfm) {
        free(ckpt);
        free(hfm);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    char *idx = tern_path_join(path, "model.safetensors.index.json");
    int is_run = tern_path_exists(ckpt), is_hf = tern_path_exists(hfm) || (idx && tern_path_exists(idx));
    free(idx);
    free(ckpt);
    free(hfm);
    tern_status st;
    if (is_run) {
        st = open_run(path, step, out, key, be);
        if (st == TERN_OK && tokdir && !(*tokdir = tern_path_join(path, "tokenizer"))) st = tern_err(TERN_ENOMEM, "out of memory");
    } else if (is_hf) {
        if (step > 0) return tern_err(TERN_EINVAL, "%s: a Hugging Face folder has no steps to choose from", path);
        st = tern_io_load_hf(path, out, be);
        if (st == TERN_OK && tokdir && !(*tokdir = strdup(path))) st = tern_err(TERN_ENOMEM, "out of memory");
    } else if (!tern_path_exists(path)) {
        return tern_err(TERN_ENOTFOUND, "%s: no such file or folder", path);
    } else {
        return tern_err(TERN_EFORMAT, "%s: neither a run folder (with ckpt/) nor a Hugging Face folder (with model.safetensors or its index)",
                        path);
    }
    if (st != TERN_OK) {
        tern_model_free(*out);
        *out = NULL;
        if (tokdir) {
            free(*tokdir);
            *tokdir = NULL;
        }
    }
    return st;
}
