/* The run's record: what a training run writes into its ledger (src/ledger/ledger.c keeps the
 * chain, the signatures and the format). A new run starts the ledger with the hashes of what
 * defines it and the hardware it runs on; each checkpoint and resume is recorded with its files'
 * hashes, so `tern ledger verify` can tell whether any of it changed afterwards. */
#include "train/train_int.h"

#include "tern/hw.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const ckpt_files[] = {"model.safetensors", "optimizer.safetensors", "state.json"};

static tern_status hash_path(uint8_t out[TERN_HASH_BYTES], const char *dir, const char *name) {
    char *p = tern_path_join(dir, name);
    if (!p) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = tern_hash_file(out, p);
    free(p);
    return st;
}

static tern_status start(tern_ledger **out, const tern_sign_key *sk, const tern_train_opts *o,
                         const uint8_t tokenizer_hash[TERN_HASH_BYTES]) {
    uint8_t cfg_h[TERN_HASH_BYTES], man_h[TERN_HASH_BYTES];
    TERN_TRY(hash_path(cfg_h, o->out, "config.json"));
    TERN_TRY(hash_path(man_h, o->data, "manifest.json"));
    /* The run's identifier: a hash of its configuration, the moment and the process. */
    char seed[256], id[2 * 8 + 1];
    uint8_t idh[TERN_HASH_BYTES];
    int k = snprintf(seed, sizeof seed, "%.6f %ld ", tern_wall_time(), (long)getpid());
    memcpy(seed + k, cfg_h, sizeof cfg_h);
    tern_hash(idh, seed, (size_t)k + sizeof cfg_h);
    tern_hex(id, idh, 8);
    cJSON *hw = NULL, *site = NULL;
    tern_status st = tern_hw_summary_json(&hw);
    if (st == TERN_OK && o->site) {
        char *text;
        size_t n;
        st = tern_read_file(o->site, &text, &n);
        if (st == TERN_OK) {
            site = cJSON_ParseWithLength(text, n);
            free(text);
            if (!cJSON_IsObject(site)) st = tern_err(TERN_EFORMAT, "%s: not a JSON object", o->site);
        }
    }
    if (st == TERN_OK) {
        tern_ledger_start info = {id, cfg_h, man_h, tokenizer_hash, hw, site, NULL};
        st = tern_ledger_create(out, o->out, sk, &info);
    }
    cJSON_Delete(hw);
    cJSON_Delete(site);
    return st;
}

tern_status tern_run_record_open(tern_ledger **out, tern_sign_key **sk, const tern_train_opts *o,
                                 const uint8_t tokenizer_hash[TERN_HASH_BYTES], const char *ckdir, uint64_t step) {
    *out = NULL;
    *sk = NULL;
    if (o->sign_key) TERN_TRY(tern_sign_key_from_file(sk, o->sign_key));
    char *lp = tern_path_join(o->out, TERN_LEDGER_FILE);
    if (!lp) return tern_err(TERN_ENOMEM, "out of memory");
    int exists = tern_path_exists(lp);
    free(lp);
    tern_status st;
    if (!ckdir || !exists) {
        /* a new run, or a run from before ledgers: its record starts here */
        st = start(out, *sk, o, tokenizer_hash);
    } else {
        st = tern_ledger_open(out, o->out, *sk);
    }
    if (st == TERN_OK && ckdir) {
        const char *rel = strrchr(ckdir, '/');
        char dir[64];
        snprintf(dir, sizeof dir, "ckpt/%s", rel ? rel + 1 : ckdir);
        cJSON *extra = cJSON_CreateObject();
        cJSON_AddStringToObject(extra, "data", o->data);
        st = tern_ledger_resume(*out, (int64_t)step, dir, ckpt_files, 3, extra);
        cJSON_Delete(extra);
    }
    if (st != TERN_OK) {
        tern_ledger_close(*out);
        tern_sign_key_free(*sk);
        *out = NULL;
        *sk = NULL;
    }
    return st;
}

tern_status tern_run_record_checkpoint(tern_ledger *l, uint64_t step, double loss) {
    char dir[64];
    snprintf(dir, sizeof dir, "ckpt/step-%06llu", (unsigned long long)step);
    cJSON *extra = cJSON_CreateObject();
    if (!isnan(loss)) cJSON_AddNumberToObject(extra, "loss", loss); /* NaN: not recorded (--seal-metrics) */
    tern_status st = tern_ledger_checkpoint(l, (int64_t)step, dir, ckpt_files, 3, extra);
    cJSON_Delete(extra);
    return st;
}
