/* The run's record: what a training run writes into its ledger (src/ledger/ledger.c keeps the
 * chain, the signatures and the format). A new run starts the ledger with the hashes of what
 * defines it and the hardware it runs on; each checkpoint and resume is recorded with its files'
 * hashes, so `tern ledger verify` can tell whether any of it changed afterwards. */
#include "train/train_int.h"

#include "tern/comm.h"
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

/* The data's identity: its manifest's hash, or for a mixture the hash of its folders' manifest
 * hashes in the order given (the spec itself, with the weights, is in config.json). */
static tern_status data_hash(uint8_t out[TERN_HASH_BYTES], const char *data) {
    if (!strchr(data, ',')) return hash_path(out, data, "manifest.json");
    tern_mixture_spec sp;
    TERN_TRY(tern_mixture_spec_parse(&sp, data));
    uint8_t *all = malloc(sp.n * TERN_HASH_BYTES);
    tern_status st = all ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; st == TERN_OK && i < sp.n; i++) st = hash_path(all + i * TERN_HASH_BYTES, sp.dirs[i], "manifest.json");
    if (st == TERN_OK) tern_hash(out, all, sp.n * TERN_HASH_BYTES);
    free(all);
    tern_mixture_spec_free(&sp);
    return st;
}

tern_status tern_run_gather_hardware(struct tern_comm *comm, struct cJSON **out) {
    *out = NULL;
    cJSON *mine;
    TERN_TRY(tern_hw_summary_json(&mine));
    int size = comm ? tern_comm_size(comm) : 1, rank = comm ? tern_comm_rank(comm) : 0;
    cJSON_AddNumberToObject(mine, "rank", rank);
    char *text = cJSON_PrintUnformatted(mine);
    cJSON_Delete(mine);
    if (!text) return tern_err(TERN_ENOMEM, "out of memory");
    cJSON *hosts = cJSON_CreateArray();
    tern_status st = TERN_OK;
    /* Each rank in turn broadcasts its summary: a length, then the text. */
    for (int r = 0; r < size && st == TERN_OK; r++) {
        uint64_t n = r == rank ? (uint64_t)strlen(text) : 0;
        char *buf = NULL;
        if (size > 1) st = tern_comm_bcast(comm, &n, sizeof n, r);
        if (st == TERN_OK && n > (1u << 24)) st = tern_err(TERN_EDIST, "rank %d sent a %llu-byte hardware summary", r, (unsigned long long)n);
        if (st == TERN_OK && !(buf = malloc(n + 1))) st = tern_err(TERN_ENOMEM, "out of memory");
        if (st == TERN_OK) {
            if (r == rank) memcpy(buf, text, n);
            if (size > 1) st = tern_comm_bcast(comm, buf, n, r);
            buf[n] = 0;
        }
        if (st == TERN_OK) {
            cJSON *h = cJSON_Parse(buf);
            if (!h) st = tern_err(TERN_EDIST, "rank %d sent a hardware summary that is not JSON", r);
            else cJSON_AddItemToArray(hosts, h);
        }
        free(buf);
    }
    free(text);
    if (st != TERN_OK) {
        cJSON_Delete(hosts);
        return st;
    }
    cJSON *hw = cJSON_CreateObject();
    cJSON_AddNumberToObject(hw, "ranks", size);
    cJSON_AddItemToObject(hw, "hosts", hosts);
    *out = hw;
    return TERN_OK;
}

static tern_status start(tern_ledger **out, const tern_sign_key *sk, const tern_train_opts *o,
                         const uint8_t tokenizer_hash[TERN_HASH_BYTES], const cJSON *hw) {
    uint8_t cfg_h[TERN_HASH_BYTES], man_h[TERN_HASH_BYTES];
    TERN_TRY(hash_path(cfg_h, o->out, "config.json"));
    TERN_TRY(data_hash(man_h, o->data));
    /* The run's identifier: a hash of its configuration, the moment and the process. */
    char seed[256], id[65]; /* a run_id is at most 64 characters (opts.c) */
    uint8_t idh[TERN_HASH_BYTES];
    int k = snprintf(seed, sizeof seed, "%.6f %ld ", tern_wall_time(), (long)getpid());
    memcpy(seed + k, cfg_h, sizeof cfg_h);
    tern_hash(idh, seed, (size_t)k + sizeof cfg_h);
    tern_hex(id, idh, 8);
    if (o->run_id) snprintf(id, sizeof id, "%s", o->run_id); /* the run_id of config.json, which sealed checkpoints carry */
    cJSON *site = NULL;
    tern_status st = TERN_OK;
    if (o->site) {
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
    cJSON_Delete(site);
    return st;
}

tern_status tern_run_record_open(tern_ledger **out, tern_sign_key **sk, const tern_train_opts *o,
                                 const uint8_t tokenizer_hash[TERN_HASH_BYTES], const char *ckdir, uint64_t step,
                                 const struct cJSON *hw, const struct cJSON *changes) {
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
        st = start(out, *sk, o, tokenizer_hash, hw);
    } else {
        st = tern_ledger_open(out, o->out, *sk);
    }
    if (st == TERN_OK && ckdir) {
        const char *rel = strrchr(ckdir, '/');
        char dir[64];
        snprintf(dir, sizeof dir, "ckpt/%s", rel ? rel + 1 : ckdir);
        /* A run killed after a checkpoint was committed but before its entry was appended left
         * that checkpoint unrecorded: record it now, marked so, before the resume from it. */
        if (!tern_ledger_has_checkpoint(*out, dir)) {
            cJSON *late = cJSON_CreateObject();
            cJSON_AddBoolToObject(late, "recorded_at_resume", 1);
            st = tern_ledger_checkpoint(*out, (int64_t)step, dir, ckpt_files, 3, late);
            cJSON_Delete(late);
        }
        if (st == TERN_OK) {
            cJSON *extra = cJSON_CreateObject();
            cJSON_AddStringToObject(extra, "data", o->data);
            /* where the run goes on: every host of this segment, with its export-control figures */
            if (hw) cJSON_AddItemToObject(extra, "hardware", cJSON_Duplicate(hw, 1));
            /* the options changed from here on, and the config.json that now holds them */
            if (cJSON_GetArraySize(changes) > 0) {
                uint8_t cfg_h[TERN_HASH_BYTES];
                char hex[2 * TERN_HASH_BYTES + 1];
                st = hash_path(cfg_h, o->out, "config.json");
                tern_hex(hex, cfg_h, TERN_HASH_BYTES);
                cJSON_AddItemToObject(extra, "changes", cJSON_Duplicate(changes, 1));
                cJSON_AddStringToObject(extra, "config", hex);
            }
            if (st == TERN_OK) st = tern_ledger_resume(*out, (int64_t)step, dir, ckpt_files, 3, extra);
            cJSON_Delete(extra);
        }
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
