/* A training run: resolve the options, open the data, build or load the model, then steps of
 * (micro-batches -> gradients -> clip -> AdamW), with evaluation, metrics (JSON Lines),
 * progress, and atomic checkpoints. Every step is a pure function of its index: the loader
 * reads window (step * grad_accum + micro) and randomness is counter-based, so a resumed run
 * repeats an unbroken one exactly. */
#include "tern/train.h"

#include "train/train_int.h"

#include "tern/ckpt.h"
#include "tern/data.h"
#include "tern/ddp.h"
#include "tern/io.h"
#include "tern/model.h"
#include "tern/optim.h"
#include "tern/policy.h"
#include "tern/secure.h"
#include "tern/tok.h"
#include "tern/eval.h"
#include "tern/watch.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef struct run {
    const tern_train_opts *o;
    train_source src;         /* --data: one folder or a mixture */
    tern_dataset *train, *val; /* the first folder's splits (src's) */
    tern_model *m;
    tern_adamw opt;
    tern_ddp *dp;    /* the data-parallel ranks (one process: one rank) */
    int batch_given; /* --batch given now: a resumed run keeps it even when the number of ranks changes */
    int32_t *in, *tg;
    char *rundir;
    FILE *metrics;
    uint64_t step; /* optimizer steps completed */
    double elapsed_before; /* seconds spent in earlier segments of the run */
    uint8_t tok_hash[TERN_HASH_BYTES];
    tern_ledger *ledger;   /* rank 0's record of the run (RUNDIR/ledger.jsonl) */
    tern_sign_key *sk;     /* signs the ledger's entries when --sign-key is given */
    double last_loss;      /* the loss of the last step, for the ledger */
    tern_key *key;         /* --key / --passphrase-file / TERN_KEY_FILE: a sealed run; NULL: plain files */
    char *mbuf;            /* --seal-metrics: metrics.jsonl kept in memory, sealed at each checkpoint */
    size_t mlen;
    char *mpath, *cfgpath;   /* RUNDIR/metrics.jsonl and RUNDIR/config.json */
    char run_id[2 * 8 + 1];  /* a new run's identifier */
    tern_train_control *ctl; /* the caller's view of the run (may be NULL) */
    const tern_train_opts *given; /* the options as this invocation was given them */
    long long ckpt_step;     /* the step of the newest checkpoint on disk; -1: none */
    int bad;                 /* non-finite steps in a row */
    tern_backend *be;        /* --device: where the model computes */
    tern_dir_lock lock;      /* rank 0 holds the run folder for the run's life */
    tern_ckpt_seal seal;     /* how checkpoints are sealed: the key and the run id (key NULL: plain) */
    tern_model_config mc;    /* the model's family and shape */
    int made_dir;            /* this process created the run folder */
    int made_lock;           /* and its lock file (a new run in a folder that was there) */
    tern_tb *tb;             /* rank 0's TensorBoard event file (--tensorboard) */
    tern_task *task;         /* --eval-task */
    char *tok_dir;           /* the tokenizer folder the run keeps (choose_tokenizer); NULL: none */
    tern_tok *tok;           /* the run's tokenizer, loaded when a task or a sample first needs it */
    tern_model_cache *cache; /* --sample-every: the generation cache, made at the first sample */
    cJSON *changes;          /* --resume: the run's options changed now ({key, from, to, step}) */
    cJSON *history;          /* --resume: config.json's earlier changes */
    int finished;            /* --resume of a run that has done all its steps: nothing to do */
    int bar;                 /* a progress bar on standard error (a terminal) */
    int lines;               /* step lines on standard output (when it is not the bar's terminal) */
    int bar_shown;           /* the bar is on the terminal's last line now */
    double last_val;         /* the last val loss of this invocation (NaN: none yet) */
} run;

tern_status tern_eval_loss(tern_model *m, const tern_dataset *val, size_t B, size_t T, size_t batches, double *loss,
                           size_t *tokens) {
    tern_loader *l;
    TERN_TRY(tern_loader_init(&l, val, B, T, 0, 0));
    uint64_t k = tern_loader_windows_per_epoch(l);
    if (batches == 0 || batches > k) batches = (size_t)k; /* each window once */
    int32_t *in = malloc(B * T * sizeof(int32_t)), *tg = malloc(B * T * sizeof(int32_t));
    tern_status st = in && tg ? tern_model_reserve(m, B, T) : tern_err(TERN_ENOMEM, "out of memory");
    double sum = 0;
    for (size_t b = 0; st == TERN_OK && b < batches; b++) {
        float lb = 0;
        st = tern_loader_get(l, b, 0, B, in, tg);
        if (st == TERN_OK) st = tern_model_forward(m, in, tg, B, T, &lb);
        sum += lb;
    }
    free(in);
    free(tg);
    tern_loader_free(l);
    if (st != TERN_OK) return st;
    *loss = sum / (double)batches;
    if (tokens) *tokens = batches * B * T;
    return TERN_OK;
}

static tern_status write_text(const char *dir, const char *name, const char *text) {
    char *p = tern_path_join(dir, name);
    if (!p) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = tern_write_file_atomic(p, text, strlen(text));
    free(p);
    return st;
}

/* Whether tok made the data (r->tok_hash is the manifest's): by its identity, or for data
 * prepared before tokenizers were identified by content, by the older hash of the files. */
static int made_data(const run *r, const tern_tok *tok) {
    return tern_tok_has_hash(tok, r->tok_hash) || tern_dataset_made_by(r->train, tern_tok_hash(tok));
}

/* The refusal of a tokenizer that did not make the data, naming both identities. */
static tern_status other_tokenizer(const char *dir, const tern_tok *tok, const char *data, const uint8_t want[TERN_HASH_BYTES]) {
    char a[2 * TERN_HASH_BYTES + 1], b[2 * TERN_HASH_BYTES + 1];
    tern_hex(a, tern_tok_hash(tok), TERN_HASH_BYTES);
    tern_hex(b, want, TERN_HASH_BYTES);
    return tern_err(TERN_EINVAL, "--tokenizer %s is not the tokenizer that made the data in %s: its hash is %s, the data's %s", dir,
                    data, a, b);
}

/* The tokenizer the run keeps beside it (export and sampling need it), chosen before anything of
 * the run is written: --tokenizer when given, refused unless it made the data; otherwise the
 * first of DATADIR/tokenizer and the --init folder that made it. o->tokenizer becomes the folder
 * chosen, so that config.json records the tokenizer used. None found: the run still trains, and
 * says that export will need a tokenizer. On resume, a --tokenizer given again must be the run's. */
static tern_status choose_tokenizer(run *r, tern_train_opts *o) {
    const char *datadir = r->src.spec.dirs[0];
    int given = tern_train_opts_is_set(r->given, "tokenizer");
    if (o->resume && !given) return TERN_OK;
    char *cands[3] = {given ? strdup(o->tokenizer) : NULL, given ? NULL : tern_path_join(datadir, "tokenizer"),
                      o->init && !given ? strdup(o->init) : NULL};
    tern_status st = TERN_OK;
    for (int i = 0; i < 3 && st == TERN_OK && !r->tok_dir; i++) {
        tern_tok *tok = NULL;
        if (!cands[i]) continue;
        st = tern_tok_load(&tok, cands[i], r->key);
        if (i > 0 && st != TERN_OK) { /* a folder looked in, not named: it may hold no tokenizer */
            tern_err_clear();
            st = TERN_OK;
        } else if (st != TERN_OK) {
            st = tern_err_wrap(st, "--tokenizer");
        } else if (made_data(r, tok)) {
            r->tok_dir = cands[i];
            cands[i] = NULL;
        } else if (i == 0) {
            st = other_tokenizer(o->tokenizer, tok, o->data, r->tok_hash);
        }
        tern_tok_free(tok);
    }
    for (int i = 0; i < 3; i++) free(cands[i]);
    TERN_TRY(st);
    if (r->tok_dir) {
        o->tokenizer = r->tok_dir;
    } else {
        o->tokenizer = NULL;
        tern_log(TERN_LOG_WARN, "no tokenizer matching the data was found (looked in %s/tokenizer%s); the run will not hold one, "
                                "and export will need --tokenizer DIR",
                 datadir, o->init ? " and --init" : "");
    }
    return TERN_OK;
}

/* Copies the chosen tokenizer into RUNDIR/tokenizer/ as vocab.json + merges.txt. */
static tern_status keep_tokenizer(const run *r, const char *rundir) {
    if (!r->tok_dir) return TERN_OK;
    char *dst = tern_path_join(rundir, "tokenizer");
    tern_status st = dst ? tern_io_copy_tokenizer(r->tok_dir, dst, r->key, r->key) : tern_err(TERN_ENOMEM, "out of memory");
    free(dst);
    return st;
}

/* On resume, metrics.jsonl keeps only the lines of steps the checkpoint covers, so the file
 * reads as one unbroken run. */
static tern_status trim_metrics(const char *path, uint64_t upto) {
    char *text;
    size_t n;
    tern_status st = tern_read_file(path, &text, &n);
    if (st == TERN_ENOTFOUND) return TERN_OK;
    if (st != TERN_OK) return st;
    tern_afile af;
    st = tern_afile_open(&af, path);
    if (st != TERN_OK) {
        free(text);
        return st;
    }
    char *line = text;
    while (st == TERN_OK && line < text + n) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        size_t len = nl ? (size_t)(nl - line) + 1 : (size_t)(text + n - line);
        cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : len);
        cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
        if (nl && cJSON_IsNumber(s) && s->valuedouble <= (double)upto) st = tern_afile_write(&af, line, len);
        cJSON_Delete(j);
        line += len;
    }
    free(text);
    if (st != TERN_OK) {
        tern_afile_abort(&af);
        return st;
    }
    return tern_afile_commit(&af);
}

/* --seal-metrics: the identity of the run's sealed metrics.jsonl. */
static void metrics_identity(char *out, size_t n, const tern_train_opts *o) { snprintf(out, n, "run %s metrics.jsonl", o->run_id); }

/* Seals the metrics kept in memory over metrics.jsonl (atomically). */
static tern_status flush_sealed_metrics(run *r) {
    if (fflush(r->metrics) != 0) return tern_err(TERN_ENOMEM, "out of memory for the metrics");
    char ident[256];
    metrics_identity(ident, sizeof ident, r->o);
    return tern_seal_file(r->mpath, r->key, ident, r->mbuf, r->mlen);
}

/* --seal-metrics on resume: the sealed file's lines of steps up to `upto` go into the memory
 * stream f (plaintext only in memory). */
static tern_status load_sealed_metrics(const char *path, const tern_train_opts *o, const tern_key *key, uint64_t upto, FILE *f) {
    if (!tern_path_exists(path)) return TERN_OK;
    char ident[256];
    metrics_identity(ident, sizeof ident, o);
    tern_plain pl = {0};
    TERN_TRY(tern_secure_read_file(&pl, path, key, ident));
    const char *text = (const char *)pl.data, *line = text;
    size_t n = pl.size;
    while (line < text + n) {
        const char *nl = memchr(line, '\n', (size_t)(text + n - line));
        size_t len = nl ? (size_t)(nl - line) + 1 : (size_t)(text + n - line);
        cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : len);
        cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
        if (nl && cJSON_IsNumber(s) && s->valuedouble <= (double)upto) fwrite(line, 1, len, f);
        cJSON_Delete(j);
        line += len;
    }
    tern_plain_free(&pl);
    return TERN_OK;
}

/* The run's options as JSON with the model's family and shape under "model": what config.json and
 * each checkpoint's state.json record, so that the architecture is read back, not re-derived. */
static cJSON *config_json(const tern_train_opts *o, const tern_model_config *mc) {
    char *text = tern_train_opts_to_json(o), *model = tern_model_config_to_json(mc);
    cJSON *j = text ? cJSON_Parse(text) : NULL, *m = model ? cJSON_Parse(model) : NULL;
    free(text);
    free(model);
    if (!j || !m) {
        cJSON_Delete(j);
        cJSON_Delete(m);
        return NULL;
    }
    cJSON_AddItemToObject(j, "model", m);
    return j;
}

static char *state_json(const run *r, double elapsed) {
    cJSON *j = cJSON_CreateObject();
    char hex[2 * TERN_HASH_BYTES + 1];
    cJSON_AddNumberToObject(j, "step", (double)r->step);
    cJSON_AddNumberToObject(j, "cursor", (double)(r->step * (uint64_t)r->o->grad_accum));
    cJSON_AddNumberToObject(j, "seed", (double)r->o->seed);
    cJSON_AddNumberToObject(j, "world_size", (double)tern_ddp_size(r->dp));
    cJSON_AddNumberToObject(j, "global_batch", (double)(r->o->batch * tern_ddp_size(r->dp)));
    cJSON_AddNumberToObject(j, "elapsed_s", elapsed);
    tern_hex(hex, r->tok_hash, TERN_HASH_BYTES);
    cJSON_AddStringToObject(j, "tokenizer_hash", hex);
    cJSON_AddStringToObject(j, "tern_version", TERN_VERSION);
    cJSON *cfg = config_json(r->o, &r->mc);
    if (cfg) cJSON_AddItemToObject(j, "model", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cfg, "model"), 1));
    if (cfg) cJSON_AddItemToObject(j, "config", cfg);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

static void set_phase(run *r, tern_train_phase ph) {
    if (r->ctl) atomic_store(&r->ctl->phase, (int)ph);
}

static tern_status checkpoint(run *r, double elapsed) {
    set_phase(r, TERN_PHASE_CHECKPOINT);
    char *s = state_json(r, elapsed);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = r->o->seal_metrics && tern_ddp_is_root(r->dp) ? flush_sealed_metrics(r) : TERN_OK;
    if (st == TERN_OK) st = tern_ddp_ckpt_save(r->dp, r->rundir, r->step, &r->opt, s, (int)r->o->keep, &r->seal);
    free(s);
    if (st == TERN_OK) {
        r->ckpt_step = (long long)r->step;
        if (r->ctl) atomic_store(&r->ctl->ckpt_step, r->ckpt_step);
    }
    if (st == TERN_OK && r->ledger) st = tern_run_record_checkpoint(r->ledger, r->step, r->o->seal_metrics ? NAN : r->last_loss);
    return st;
}

/* The terminal's width in columns: standard error's (TIOCGWINSZ), else $COLUMNS, else 80. */
static int term_cols(void) {
    struct winsize ws;
    if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    return n > 0 && n < 10000 ? n : 80;
}

/* Takes the progress bar off the terminal's last line, so that a record line written next to
 * standard output starts at the line's beginning; the next step draws the bar again. */
static void clear_bar(run *r) {
    if (!r->bar_shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    r->bar_shown = 0;
}

/* One record line on standard output (the step lines, evaluations, samples, changes, the
 * summary), flushed at once so that it keeps its place among the lines of standard error. */
static void record(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(run *r, const char *fmt, ...) {
    clear_bar(r);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* The progress bar, redrawn in place and cut to the terminal's width so that it never wraps:
 * the bar itself narrows first (24 marks at most, none below 5), then the line is cut. */
static void draw_bar(run *r, float loss, double tps, const char *eta) {
    uint64_t total = (uint64_t)r->o->steps;
    char head[64], tail[128], bar[32] = "", line[256];
    snprintf(head, sizeof head, "step %llu/%llu", (unsigned long long)r->step, (unsigned long long)total);
    snprintf(tail, sizeof tail, "loss %.4f | %.0f tok/s | ETA %s", loss, tps, eta);
    int cols = term_cols(), room = cols - 1 - 2 - (int)strlen(head) - (int)strlen(tail) - 4;
    int width = room < 24 ? room : 24;
    if (width >= 5) {
        int done = (int)((double)r->step / (double)total * width);
        bar[0] = ' ';
        bar[1] = '[';
        for (int i = 0; i < width; i++) bar[2 + i] = i < done ? '#' : '.';
        bar[2 + width] = ']';
        bar[3 + width] = 0;
    }
    int n = snprintf(line, sizeof line, "  %s%s %s", head, bar, tail);
    if (n > cols - 1) n = cols - 1 > 0 ? cols - 1 : 0;
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    line[n] = 0;
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    r->bar_shown = 1;
}

static tern_status open_data(run *r) {
    const tern_train_opts *o = r->o;
    TERN_TRY(train_source_open(&r->src, o->data, r->key));
    r->train = r->src.train[0];
    r->val = r->src.val[0];
    memcpy(r->tok_hash, tern_dataset_tokenizer_hash(r->train), TERN_HASH_BYTES);
    if (o->eval_task) {
        /* the task's file is read now, so that a missing one stops the run before it trains */
        char *path = o->eval_task_data ? strdup(o->eval_task_data) : NULL;
        if (!path) TERN_TRY(tern_task_data_path(o->eval_task, &path));
        tern_status st = path ? tern_task_load(&r->task, o->eval_task, path) : tern_err(TERN_ENOMEM, "out of memory");
        free(path);
        TERN_TRY(st);
    }
    return TERN_OK;
}

/* The model of a new run from its options: the family (--arch) and its shape, each family's
 * defaults where an option is left at 0. */
static tern_model_config config_from_opts(const tern_train_opts *o, size_t V) {
    tern_model_config c;
    if (!strcmp(o->arch, "llama")) {
        c = tern_model_config_llama((int)o->n_layer, (int)o->n_head, (int)o->n_kv_head, (int)o->n_embd, (int)o->n_ctx, (int)V);
        c.rope_theta = o->rope_theta;
        c.tie_embeddings = o->tie_embeddings;
        c.qkv_bias = o->qkv_bias;
    } else {
        c = tern_model_config_gpt2((int)o->n_layer, (int)o->n_head, (int)o->n_embd, (int)o->n_ctx, (int)V);
        snprintf(c.arch, sizeof c.arch, "%s", o->arch); /* an unknown family is refused by the check */
    }
    if (o->ffn_dim) c.ffn_dim = (int)o->ffn_dim;
    if (tern_train_opts_is_set(o, "norm_eps")) c.norm_eps = o->norm_eps;
    return c;
}

/* Options whose values must agree with a model that comes from elsewhere (--init or the run's
 * own config.json): given explicitly with another value, they are refused by name. */
static tern_status agree(const tern_train_opts *flags, const char *key, long long given, long long model, const char *from) {
    if (tern_train_opts_is_set(flags, key) && given != model) {
        char flag[40];
        size_t i = 0;
        for (const char *c = key; *c && i + 1 < sizeof flag; c++) flag[i++] = *c == '_' ? '-' : *c;
        flag[i] = 0;
        return tern_err(TERN_EINVAL, "--%s %lld differs from the model's %lld (%s)", flag, given, model, from);
    }
    return TERN_OK;
}

/* The model's family and shape, resolved without allocating anything: from the options, from a
 * Hugging Face folder's config.json (--init), or from the run's config.json (--resume). The
 * options then describe it. */
static tern_status model_config(run *r, tern_train_opts *o, tern_model_config *c) {
    size_t V = tern_dataset_vocab_size(r->train);
    const char *from = NULL;
    char *cp = NULL;
    if (o->resume) {
        TERN_TRY(tern_io_run_model_config(o->out, c));
        from = "the run's config.json";
    } else if (o->init) {
        cp = tern_path_join(o->init, "config.json");
        if (!cp) return tern_err(TERN_ENOMEM, "out of memory");
        tern_status st = tern_io_read_hf_config(cp, c);
        free(cp);
        TERN_TRY(st);
        from = o->init;
    } else {
        if (o->vocab_size && (size_t)o->vocab_size != V)
            return tern_err(TERN_EINVAL, "--vocab-size %lld differs from the data's vocabulary (%zu)", o->vocab_size, V);
        if (!o->n_ctx) o->n_ctx = o->seq;
        if (o->seq > o->n_ctx) return tern_err(TERN_EINVAL, "--seq %lld exceeds --n-ctx %lld", o->seq, o->n_ctx);
        *c = config_from_opts(o, V);
        o->vocab_size = (long long)V;
        o->n_kv_head = c->n_kv_head; /* config.json records the resolved shape */
        o->ffn_dim = c->ffn_dim;
        return tern_model_config_check(c);
    }
    const tern_train_opts *flags = r->given; /* what this invocation was given, not what config.json held */
    TERN_TRY(agree(flags, "n_layer", o->n_layer, c->n_layer, from));
    TERN_TRY(agree(flags, "n_head", o->n_head, c->n_head, from));
    TERN_TRY(agree(flags, "n_embd", o->n_embd, c->n_embd, from));
    if (!strcmp(c->arch, "llama")) {
        TERN_TRY(agree(flags, "n_kv_head", o->n_kv_head, c->n_kv_head, from));
        TERN_TRY(agree(flags, "ffn_dim", o->ffn_dim, c->ffn_dim, from));
    }
    if (tern_train_opts_is_set(flags, "arch") && strcmp(o->arch, c->arch))
        return tern_err(TERN_EINVAL, "--arch %s differs from the model's %s (%s)", o->arch, c->arch, from);
    if ((size_t)c->vocab_size != V)
        return tern_err(TERN_EINVAL, "%s: the model's vocabulary (%d) differs from the data's (%zu)", from, c->vocab_size, V);
    o->arch = c->arch;
    o->n_layer = c->n_layer;
    o->n_head = c->n_head;
    o->n_kv_head = c->n_kv_head;
    o->n_embd = c->n_embd;
    o->ffn_dim = c->ffn_dim;
    o->n_ctx = c->n_ctx;
    o->vocab_size = c->vocab_size;
    if (!tern_train_opts_is_set(o, "seq") && !o->resume) o->seq = c->n_ctx < o->seq ? c->n_ctx : o->seq;
    if (o->seq > c->n_ctx) return tern_err(TERN_EINVAL, "--seq %lld exceeds the model's context (%d positions)", o->seq, c->n_ctx);
    if (c->sliding_window && o->seq > c->sliding_window)
        return tern_err(TERN_EINVAL, "%s: the model's sliding attention window (%d) is shorter than --seq %lld; tern computes full "
                                     "causal attention, equal to the window's only up to its length: give --seq %d or less",
                        from, c->sliding_window, o->seq, c->sliding_window);
    return TERN_OK;
}

/* Allocates the model of shape c and fills it: from the checkpoint (resume), the --init folder,
 * or the family's initialisation from the seed. */
static tern_status build_model(run *r, const tern_train_opts *o, const tern_model_config *c, const char *ckdir) {
    if (o->init && !o->resume) {
        TERN_TRY(tern_io_load_hf(o->init, &r->m, r->be));
        if (memcmp(tern_model_cfg(r->m), c, sizeof *c))
            return tern_err(TERN_EFORMAT, "%s: config.json changed while the run started", o->init);
        return TERN_OK;
    }
    TERN_TRY(tern_model_init(&r->m, c, r->be));
    if (o->resume) return tern_ckpt_load_model(ckdir, r->m, &r->seal);
    return tern_model_init_weights(r->m, (uint64_t)o->seed);
}

/* "8G", "512M", "1.5GiB", "4096" (bytes) -> bytes; -1 on a malformed size; "0" is 0. */
static double parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || isinf(v)) return -1;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i') end++;
    if (*end == 'B') end++;
    return *end ? -1 : v * mult;
}

/* Refuses a run that would not fit in memory, before anything large is allocated, and says
 * what would fit. The limit is --max-memory when given (0 turns the check off), else the memory
 * this process may use (tern_mem_limit: physical memory, cgroup and rlimits), shared by the
 * ranks on this node. Counts parameters, gradients, AdamW's two moments (this rank's shard of
 * them under ZeRO-1), the bf16 weight copies where the products keep them, and the activations,
 * which is what the process holds beyond its fixed ~0.1 GiB (docs/PERFORMANCE.md compares this
 * accounting with measured peak RSS). */
static tern_status check_memory(const run *r, const tern_train_opts *o, const tern_model_config *c) {
    double limit;
    char what[1500];
    if (o->max_memory) {
        limit = parse_size(o->max_memory);
        if (limit < 0) return tern_err(TERN_EINVAL, "--max-memory: '%s' is not a size (e.g. 8G, 512M, 4096; 0 = no check)", o->max_memory);
        if (limit == 0) return TERN_OK;
        snprintf(what, sizeof what, "--max-memory is");
    } else {
        char src[1400];
        uint64_t m = tern_mem_limit(src, sizeof src);
        if (!m) return TERN_OK;
        int local = tern_ddp_local_size(r->dp);
        limit = (double)m / local;
        if (local > 1)
            snprintf(what, sizeof what, "this node's %s, %.2f GiB, shared by its %d ranks, leaves each", src,
                     (double)m / (1024.0 * 1024 * 1024), local);
        else
            snprintf(what, sizeof what, "%s is", src);
    }
    const double gib = 1024.0 * 1024 * 1024;
    size_t np = tern_model_config_num_params(c);
    double shard = (double)np / (o->zero ? tern_ddp_size(r->dp) : 1);
    /* and what the backend keeps beside the weights (bf16 copies for its products) */
    double copies = (double)tern_backend_weight_copy_bytes(r->be) * (double)np;
    double state = (2.0 * (double)np + 2.0 * shard) * sizeof(float) + copies;
    const char *held = copies > 0 ? "parameters, gradients, AdamW moments and bf16 weight copies" : "parameters, gradients and AdamW moments";
    size_t B = (size_t)o->batch, T = (size_t)o->seq;
    double acts = (double)tern_model_activation_bytes_for(c, B, T, (int)o->recompute);
    if (state + acts <= limit) return TERN_OK;
    size_t fit = 0, fit_rc = 0; /* the largest batch that fits, as configured and with --recompute */
    for (size_t b = B; b-- > 1 && !(fit && fit_rc);) {
        if (!fit && state + (double)tern_model_activation_bytes_for(c, b, T, (int)o->recompute) <= limit) fit = b;
        if (!fit_rc && state + (double)tern_model_activation_bytes_for(c, b, T, 1) <= limit) fit_rc = b;
    }
    char hint[400];
    double acts_rc = (double)tern_model_activation_bytes_for(c, B, T, 1);
    if (!o->recompute && state + acts_rc <= limit)
        snprintf(hint, sizeof hint, "--recompute would fit (activations %.2f GiB, the blocks' forward pass run twice)",
                 acts_rc / gib);
    else if (fit)
        snprintf(hint, sizeof hint, "--batch %zu (with --grad-accum %lld for the same tokens per step) would fit%s", fit,
                 (long long)((B * (size_t)o->grad_accum + fit - 1) / fit),
                 !o->recompute && fit_rc > fit ? ", or a larger batch with --recompute" : "");
    else if (fit_rc)
        snprintf(hint, sizeof hint, "--batch %zu with --recompute would fit", fit_rc);
    else
        snprintf(hint, sizeof hint,
                 "even --batch 1 would not: %s alone need %.2f GiB; a smaller model, or more ranks with --zero 1, would", held,
                 state / gib);
    return tern_err(TERN_ENOMEM,
                    "the run needs %.2f GiB (%s %.2f GiB; activations for %zu x %zu tokens %.2f GiB) but %s %.2f GiB; %s%s",
                    (state + acts) / gib, held, state / gib, B, T, acts / gib, what, limit / gib, hint,
                    o->max_memory ? "" : " (--max-memory 0 turns this check off)");
}

static int stop_requested(const run *r) { return r->ctl && atomic_load(&r->ctl->stop); }

/* One optimizer step: the micro-batches' forward and backward passes, the gradients reduced over
 * the ranks, clipping and AdamW (skipped when the loss or the norm is not finite). */
static tern_status step_once(run *r, float lr, double *loss, double *norm, int *finite) {
    const tern_train_opts *o = r->o;
    size_t B = (size_t)o->batch, T = (size_t)o->seq, A = (size_t)o->grad_accum;
    tern_status st = tern_model_zero_grad(r->m);
    *loss = 0;
    for (size_t a = 0; a < A && st == TERN_OK; a++) {
        float lb = 0;
        st = train_source_get(&r->src, r->step * A + a, (size_t)tern_ddp_rank(r->dp) * B, B, r->in, r->tg);
        if (st == TERN_OK) st = tern_ddp_forward_backward(r->dp, r->in, r->tg, B, T, 1.0f / (float)A, a + 1 == A, &lb);
        if (st == TERN_ENUMERIC) tern_err_wrap(st, "step %llu, micro-batch %zu", (unsigned long long)r->step + 1, a);
        if (st == TERN_OK && tern_model_anomaly(r->m))
            st = tern_err(TERN_ENUMERIC, "step %llu, micro-batch %zu: non-finite value in the backward pass: %s",
                          (unsigned long long)r->step + 1, a, tern_model_anomaly(r->m));
        if (st == TERN_OK) *loss += (double)lb / (double)A;
    }
    if (st == TERN_OK) st = tern_ddp_reduce_grads(r->dp, loss, norm);
    if (st != TERN_OK) return st;
    *finite = isfinite(*loss) && isfinite(*norm);
    if (!*finite) return TERN_OK;
    size_t shard0, shard1; /* the parameters this rank updates (all, or its ZeRO shard) */
    tern_ddp_shard(r->dp, &shard0, &shard1);
    tern_adamw_hparams hp = {(float)o->beta1, (float)o->beta2, (float)o->eps, (float)o->weight_decay};
    float clip = o->grad_clip > 0 ? tern_clip_coef(*norm, (float)o->grad_clip) : 1.0f;
    TERN_TRY(tern_adamw_step_scaled(&r->opt, r->m, lr, r->step + 1, &hp, clip));
    return tern_ddp_sync_params(r->dp);
}

/* One line of metrics.jsonl (and of TensorBoard's file, which takes every number of it). */
static tern_status metrics_line(run *r, const char *line) {
    fprintf(r->metrics, "%s\n", line);
    fflush(r->metrics);
    if (!r->tb) return TERN_OK;
    TERN_TRY(tern_tb_metrics_line(r->tb, line, 0, tern_wall_time(), NULL));
    return tern_tb_flush(r->tb);
}

/* A number for a JSON line: %.9g (exact for float32), null when not finite (JSON has no NaN). */
static const char *jnum(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.9g", v);
    else snprintf(buf, n, "null");
    return buf;
}

/* The step's metrics line; a run of non-finite steps longer than --max-bad-steps ends the run. */
static tern_status log_step(run *r, float lr, double loss, double norm, int finite, double tps, double elapsed) {
    /* a mixture adds the tokens drawn from each folder so far, "tokens_<name>": every window
     * holds B_global x T tokens, and the run has consumed step x grad_accum windows */
    size_t cap = 512 + (r->src.mix ? r->src.n * 160 : 0), k;
    char *line = malloc(cap), a[32], b[32];
    if (!line) return tern_err(TERN_ENOMEM, "out of memory");
    k = (size_t)snprintf(line, cap, "{\"step\":%llu,\"loss\":%s,\"lr\":%.9g,\"grad_norm\":%s,\"tokens_per_s\":%.1f,\"elapsed_s\":%.3f",
                         (unsigned long long)r->step, jnum(a, sizeof a, loss), lr, jnum(b, sizeof b, norm), tps, elapsed);
    if (r->src.mix) {
        uint64_t per = (uint64_t)r->o->batch * (uint64_t)tern_ddp_size(r->dp) * (uint64_t)r->o->seq;
        tern_status st = tern_mixture_consumed(r->src.mix, r->step * (uint64_t)r->o->grad_accum, r->src.drawn);
        if (st != TERN_OK) {
            free(line);
            return st;
        }
        for (size_t i = 0; i < r->src.n; i++)
            k += (size_t)snprintf(line + k, cap - k, ",\"tokens_%.100s\":%llu", r->src.names[i], (unsigned long long)(r->src.drawn[i] * per));
    }
    snprintf(line + k, cap - k, "%s}", finite ? "" : ",\"skipped\":true");
    tern_status st = metrics_line(r, line);
    free(line);
    TERN_TRY(st);
    if (finite) {
        r->bad = 0;
        return TERN_OK;
    }
    r->bad++;
    tern_log(TERN_LOG_WARN, "step %llu: non-finite %s; update skipped (%d in a row)", (unsigned long long)r->step,
             isfinite(loss) ? "gradient norm" : "loss", r->bad);
    if (r->bad >= r->o->max_bad_steps)
        return tern_err(TERN_ENUMERIC, "%d non-finite steps in a row (last at step %llu); stopping, the last good checkpoint is kept",
                        r->bad, (unsigned long long)r->step);
    return TERN_OK;
}

/* The val loss after this step when --eval-every says so (and after the last). */
static tern_status maybe_eval(run *r, int end, const tern_train_hooks *hooks) {
    const tern_train_opts *o = r->o;
    if (!((o->eval_every && r->step % (uint64_t)o->eval_every == 0) || end)) return TERN_OK;
    set_phase(r, TERN_PHASE_EVAL);
    /* a mixture: each folder's val loss, and their mean weighted by the folders' shares */
    char extra[2048] = "", num[2][32];
    size_t k = 0, ntok = 0;
    double vl = 0, wsum = 0;
    for (size_t i = 0; i < r->src.n; i++) {
        if (!r->src.val[i]) continue;
        double l, w = train_source_share(&r->src, i);
        size_t nt;
        TERN_TRY(tern_ddp_eval_loss(r->dp, r->src.val[i], (size_t)o->batch, (size_t)o->seq, (size_t)o->eval_batches, &l, &nt));
        vl += w * l;
        wsum += w;
        ntok += nt;
        if (r->src.n > 1 && k + 200 < sizeof extra)
            k += (size_t)snprintf(extra + k, sizeof extra - k, ",\"val_loss_%.100s\":%s", r->src.names[i], jnum(num[0], sizeof num[0], l));
    }
    if (wsum == 0) return TERN_OK;
    vl /= wsum;
    char line[2400];
    snprintf(line, sizeof line, "{\"step\":%llu,\"val_loss\":%s,\"val_ppl\":%s,\"val_tokens\":%zu%s}", (unsigned long long)r->step,
             jnum(num[0], sizeof num[0], vl), jnum(num[1], sizeof num[1], exp(vl)), ntok, extra);
    TERN_TRY(metrics_line(r, line));
    r->last_val = vl;
    if (hooks && hooks->progress) record(r, "step %llu: val loss %.4f (perplexity %.2f)\n", (unsigned long long)r->step, vl, exp(vl));
    return TERN_OK;
}

/* The run's own tokenizer (RUNDIR/tokenizer), loaded once; `who` is the option that needs it. */
static tern_status run_tokenizer(run *r, const char *who) {
    if (r->tok) return TERN_OK;
    char *dir = tern_path_join(r->o->out, "tokenizer");
    tern_status st = dir ? tern_tok_load(&r->tok, dir, r->key) : tern_err(TERN_ENOMEM, "out of memory");
    free(dir);
    if (st != TERN_OK) return tern_err_wrap(st, "%s needs the run's tokenizer", who);
    return TERN_OK;
}

/* Appends bytes to a growing buffer (tern_sample_emit's context). */
typedef struct {
    char *p;
    size_t n, cap;
} text_buf;

static tern_status text_put(void *ctx, const uint8_t *bytes, size_t n) {
    text_buf *b = ctx;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return tern_err(TERN_ENOMEM, "out of memory for a sample");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, bytes, n);
    b->n += n;
    b->p[b->n] = 0;
    return TERN_OK;
}

/* The text with every byte that is not part of valid UTF-8 replaced by U+FFFD, so that a sample
 * cut inside a character still makes a JSON string (malloc'd). */
static char *valid_utf8(const char *s, size_t n) {
    char *out = malloc(3 * n + 1), *q = out;
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && (size_t)(end - p) >= len;
        for (size_t i = 1; ok && i < len; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok && len > 1) {
            uint32_t cp = p[0] & (0x7F >> len);
            for (size_t i = 1; i < len; i++) cp = cp << 6 | (p[i] & 0x3F);
            static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= least[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok) {
            memcpy(q, p, len);
            q += len;
            p += len;
        } else {
            memcpy(q, "\xEF\xBF\xBD", 3);
            q += 3;
            p++;
        }
    }
    *q = 0;
    return out;
}

/* --sample-every: rank 0 draws a sample from the model after this step (and after the last),
 * with the run's tokenizer, temperature 0.8, top-k 40, the run's seed and the step as the
 * sample's index. It goes to standard output and into metrics.jsonl as {"step":S,"sample":TEXT}
 * (TEXT: the prompt and what followed), a line every JSON reader takes; TensorBoard's file and
 * the plots read numbers only. Sampling reads the parameters and its own cache, so the run's
 * numbers are the same with it as without. */
static tern_status maybe_sample(run *r, int end, const tern_train_hooks *hooks) {
    const tern_train_opts *o = r->o;
    if (!o->sample_every || !tern_ddp_is_root(r->dp) || !(r->step % (uint64_t)o->sample_every == 0 || end)) return TERN_OK;
    set_phase(r, TERN_PHASE_EVAL);
    TERN_TRY(run_tokenizer(r, "--sample-every"));
    if (!r->cache) TERN_TRY(tern_model_cache_init(&r->cache, r->m));
    text_buf b = {0};
    const char *prompt = o->sample_prompt ? o->sample_prompt : "";
    tern_status st = text_put(&b, (const uint8_t *)prompt, strlen(prompt));
    tern_sample_opts so = {0.8, 40, 1.0, (uint64_t)o->seed, r->step, (size_t)o->sample_tokens};
    if (st == TERN_OK) st = tern_sample_text(r->m, r->cache, r->tok, o->sample_prompt, &so, text_put, &b);
    char *text = st == TERN_OK ? valid_utf8(b.p, b.n) : NULL;
    if (st == TERN_OK && !text) st = tern_err(TERN_ENOMEM, "out of memory for a sample");
    if (st == TERN_OK) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "step", (double)r->step);
        cJSON_AddStringToObject(j, "sample", text);
        char *line = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        st = line ? metrics_line(r, line) : tern_err(TERN_ENOMEM, "out of memory");
        free(line);
    }
    if (st == TERN_OK && hooks && hooks->progress) record(r, "step %llu: sample:\n%s\n", (unsigned long long)r->step, text);
    free(text);
    free(b.p);
    return st;
}

/* --eval-task: the benchmark's score after this step, every --eval-task-every steps (with each
 * evaluation when 0) and after the last; every rank scores its share of the items. */
static tern_status maybe_task(run *r, int end, const tern_train_hooks *hooks) {
    const tern_train_opts *o = r->o;
    if (!r->task) return TERN_OK;
    long long every = o->eval_task_every ? o->eval_task_every : o->eval_every;
    if (!((every && r->step % (uint64_t)every == 0) || end)) return TERN_OK;
    set_phase(r, TERN_PHASE_EVAL);
    TERN_TRY(run_tokenizer(r, "--eval-task"));
    size_t B = (size_t)o->batch, T = (size_t)o->seq;
    tern_task_tally tally;
    TERN_TRY(tern_task_eval_model(r->task, r->tok, r->m, B, B, T, (size_t)o->eval_task_limit, tern_ddp_rank(r->dp),
                                  tern_ddp_size(r->dp), &tally));
    TERN_TRY(tern_ddp_sum_f64(r->dp, (double *)&tally, TERN_TASK_TALLY_N));
    char *line = NULL;
    TERN_TRY(tern_task_metrics_json(r->task, &tally, (int64_t)r->step, &line));
    tern_status st = metrics_line(r, line);
    if (st == TERN_OK && hooks && hooks->progress)
        record(r, "step %llu: %s accuracy %.4f over %.0f items\n", (unsigned long long)r->step, o->eval_task,
                tally.n > 0 ? tally.acc / tally.n : 0.0, tally.n);
    free(line);
    return st;
}

/* Why the run should stop after this step, agreed by every rank in one collective: 2 = a stop
 * request (on any rank), 1 = the time limit, 0 = go on. */
static tern_status stop_reason(run *r, double ran, int *why) {
    *why = stop_requested(r) ? 2 : r->o->time_limit > 0 && ran >= r->o->time_limit ? 1 : 0;
    return tern_ddp_max(r->dp, why);
}

/* Why run_steps ended. */
enum { END_LAST, END_TIME, END_REQUEST, END_BEFORE };

static tern_status run_steps(run *r, const tern_train_hooks *hooks, int *ended) {
    const tern_train_opts *o = r->o;
    size_t B = (size_t)o->batch, T = (size_t)o->seq, A = (size_t)o->grad_accum;
    float lr_min = o->min_lr >= 0 ? (float)o->min_lr : (float)o->lr / 10.0f;
    tern_lr_schedule sch = {strcmp(o->schedule, "cosine") ? TERN_SCHED_CONSTANT : TERN_SCHED_COSINE, (float)o->lr, lr_min,
                            (uint64_t)o->warmup, (uint64_t)o->steps};
    uint64_t last = o->stop_at > 0 && o->stop_at < o->steps ? (uint64_t)o->stop_at : (uint64_t)o->steps;
    double t0 = tern_now(), last_print = 0;
    uint64_t first = r->step;
    tern_status st = TERN_OK;
    *ended = END_LAST;
    /* Asked to stop before the first step (during start-up): the state at this step is the
     * checkpoint, so that the run resumes from here; a resumed run already has it on disk. */
    int stop_first = stop_requested(r);
    if (tern_ddp_any(r->dp, &stop_first) != TERN_OK) return TERN_EDIST;
    if (stop_first && r->step < last) {
        if (r->ckpt_step != (long long)r->step) st = checkpoint(r, r->elapsed_before);
        *ended = END_BEFORE;
        return st;
    }
    while (r->step < last) {
        double ts = tern_now(), loss, norm;
        if (r->ctl) {
            atomic_store(&r->ctl->step, (long long)r->step + 1);
            set_phase(r, TERN_PHASE_STEP);
        }
        float lr = tern_lr_at(&sch, r->step);
        int finite = 0;
        if ((st = step_once(r, lr, &loss, &norm, &finite)) != TERN_OK) break;
        r->step++;
        r->last_loss = loss;
        double now = tern_now(), tps = (double)(B * T * A * (size_t)tern_ddp_size(r->dp)) / (now - ts);
        if ((st = log_step(r, lr, loss, norm, finite, tps, r->elapsed_before + (now - t0))) != TERN_OK) break;
        if (hooks && hooks->progress) {
            char eta[32];
            tern_fmt_duration(eta, sizeof eta, (now - t0) / (double)(r->step - first) * (double)(last - r->step));
            if (r->bar) draw_bar(r, (float)loss, tps, eta);
            /* off the bar's terminal, a line a second (and the first and last) */
            if (r->lines && (now - last_print >= 1.0 || r->step == last || r->step == first + 1)) {
                record(r, "step %llu/%llu loss %.4f %.0f tok/s ETA %s\n", (unsigned long long)r->step, (unsigned long long)o->steps,
                       loss, tps, eta);
                last_print = now;
            }
        }
        if (r->ctl) atomic_store(&r->ctl->step, (long long)r->step);
        int why, end = r->step == last;
        if ((st = stop_reason(r, now - t0, &why)) != TERN_OK || (st = maybe_eval(r, end, hooks)) != TERN_OK ||
            (st = maybe_task(r, end, hooks)) != TERN_OK || (st = maybe_sample(r, end, hooks)) != TERN_OK)
            break;
        if ((end || why || (o->ckpt_every && r->step % (uint64_t)o->ckpt_every == 0)) &&
            (st = checkpoint(r, r->elapsed_before + (tern_now() - t0))) != TERN_OK)
            break;
        if (why) {
            *ended = why == 2 ? END_REQUEST : END_TIME;
            break;
        }
    }
    set_phase(r, TERN_PHASE_CLOSING);
    if (r->bar_shown) {
        fputc('\n', stderr); /* the last state of the bar stays on the terminal */
        r->bar_shown = 0;
    }
    return st;
}

/* What a run that ended well prints last, on standard output: where it stopped and why, the last
 * losses, its checkpoint, and what to run next. */
static void summary(run *r, int ended) {
    const tern_train_opts *o = r->o;
    unsigned long long step = (unsigned long long)r->step, steps = (unsigned long long)o->steps;
    char val[64] = "";
    if (!isnan(r->last_val)) snprintf(val, sizeof val, ", val loss %.4f", r->last_val);
    if (ended == END_BEFORE) {
        record(r, "stopped on request before step %llu of %llu\n", step + 1, steps);
    } else if (ended == END_LAST && r->step >= (uint64_t)o->steps) {
        record(r, "finished %s: step %llu of %llu, train loss %.4f%s\n", o->out, step, steps, r->last_loss, val);
    } else {
        record(r, "stopped %s after step %llu of %llu: train loss %.4f%s\n",
               ended == END_REQUEST ? "on request" : ended == END_TIME ? "at the time limit" : "at --stop-at", step, steps, r->last_loss,
               val);
    }
    record(r, "checkpoint %s/ckpt/step-%06llu\n", o->out, step);
    if (ended == END_LAST && r->step >= (uint64_t)o->steps)
        record(r, "next: tern eval %s; tern sample %s --prompt TEXT; tern export %s -o DIR\n", o->out, o->out, o->out);
    else
        record(r, "next: tern train -o %s --resume\n", o->out);
}

static tern_status resume_state(run *r, tern_train_opts *o, char **ckdir) {
    TERN_TRY(tern_ckpt_latest(o->out, ckdir));
    char *text;
    TERN_TRY(tern_ckpt_read_state(*ckdir, &text, &r->seal));
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
    cJSON *el = j ? cJSON_GetObjectItemCaseSensitive(j, "elapsed_s") : NULL;
    cJSON *th = j ? cJSON_GetObjectItemCaseSensitive(j, "tokenizer_hash") : NULL;
    tern_status st = TERN_OK;
    uint8_t h[TERN_HASH_BYTES];
    if (!cJSON_IsNumber(s) || s->valuedouble < 0 || !cJSON_IsString(th) || tern_unhex(h, TERN_HASH_BYTES, th->valuestring))
        st = tern_err(TERN_EFORMAT, "%s/state.json: missing or bad \"step\" or \"tokenizer_hash\"", *ckdir);
    else if (!tern_dataset_made_by(r->train, h)) {
        char dh[2 * TERN_HASH_BYTES + 1];
        tern_hex(dh, r->tok_hash, TERN_HASH_BYTES);
        st = tern_err(TERN_EINVAL, "%s: the data was made with another tokenizer than the run's: its hash is %s, the run's %s", o->data,
                      dh, th->valuestring);
    }
    if (st == TERN_OK) {
        r->step = (uint64_t)s->valuedouble;
        r->elapsed_before = cJSON_IsNumber(el) ? el->valuedouble : 0;
        /* the global batch (and so the data order) stays when the number of ranks changes */
        cJSON *gb = cJSON_GetObjectItemCaseSensitive(j, "global_batch");
        st = tern_ddp_fit_batch(r->dp, &o->batch, r->batch_given, cJSON_IsNumber(gb) ? (long long)gb->valuedouble : o->batch);
    }
    cJSON_Delete(j);
    return st;
}

/* Takes the run folder for this process: creates it for a new run, locks it, and checks that a
 * new run does not start over an existing one. Nothing in the folder is written before the lock
 * is held, and nothing at all when it is refused. */
static tern_status take_run_folder(run *r, const tern_train_opts *o) {
    if (o->resume) {
        if (!tern_path_exists(o->out)) return tern_err(TERN_ENOTFOUND, "%s: no run to resume here (no such folder)", o->out);
    } else {
        r->made_dir = !tern_path_exists(o->out);
        TERN_TRY(tern_mkdir_p(o->out));
    }
    char *lp = tern_path_join(o->out, "lock");
    r->made_lock = lp && !tern_path_exists(lp);
    free(lp);
    TERN_TRY(tern_dir_lock_take(&r->lock, o->out, "another tern train"));
    if (o->resume) return TERN_OK;
    static const char *const held[] = {"ckpt", "config.json", TERN_LEDGER_FILE, "metrics.jsonl"};
    for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
        char *p = tern_path_join(o->out, held[i]);
        int exists = p && tern_path_exists(p);
        free(p);
        if (exists)
            return tern_err(TERN_EINVAL, "%s already holds a run (%s); continue it with --resume, or choose another folder",
                            o->out, held[i]);
    }
    return TERN_OK;
}

/* A new run that failed before writing anything leaves no folder behind: the folder this
 * process created is removed when it holds nothing but the lock file. */
static void forget_new_folder(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    int other = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "lock")) other = 1;
    closedir(d);
    if (other) return;
    char *lp = tern_path_join(dir, "lock");
    if (lp) unlink(lp);
    free(lp);
    rmdir(dir);
}

void tern_train_control_init(tern_train_control *c) {
    atomic_init(&c->stop, 0);
    atomic_init(&c->phase, TERN_PHASE_SETUP);
    atomic_init(&c->step, 0);
    atomic_init(&c->ckpt_step, -1);
}

void tern_train_control_describe(const tern_train_control *c, char *out, size_t n) {
    long long step = atomic_load(&c->step);
    switch ((tern_train_phase)atomic_load(&c->phase)) {
    case TERN_PHASE_SETUP: snprintf(out, n, "start-up (reading the data, building the model)"); break;
    case TERN_PHASE_STEP: snprintf(out, n, "step %lld", step); break;
    case TERN_PHASE_EVAL: snprintf(out, n, "the evaluation after step %lld", step); break;
    case TERN_PHASE_CHECKPOINT: snprintf(out, n, "the checkpoint of step %lld", step); break;
    case TERN_PHASE_CLOSING: snprintf(out, n, "the closing of the run's files"); break;
    }
}

/* Options, key, ranks and the policy gate: everything decided before any data is read. On
 * resume the run's own config.json is the base and the flags given now override it. */
static tern_status run_open(run *r, tern_train_opts *o, const tern_train_opts *given, const tern_train_hooks *hooks) {
    if (o->resume) {
        tern_status st = train_opts_resume(o, r->cfgpath, &r->changes, &r->history);
        if (st == TERN_ENOTFOUND) st = tern_err(TERN_ENOTFOUND, "%s: no run to resume here (no config.json)", o->out);
        TERN_TRY(st);
    }
    TERN_TRY(tern_train_opts_check(o));
    /* A sealed run: its key, and an identifier that binds its checkpoints to it. */
    TERN_TRY(tern_key_load(&r->key, o->key, o->passphrase_file));
    if (!o->run_id && o->resume && r->key)
        return tern_err(TERN_EFORMAT, "%s: the run has no \"run_id\", so its checkpoints cannot be sealed to it; a sealed run must "
                                      "start sealed", r->cfgpath);
    if (o->seal_metrics && !r->key)
        return tern_err(TERN_EINVAL, "--seal-metrics needs a key: give --key KEYFILE or --passphrase-file FILE, or set TERN_KEY_FILE");
    r->seal = (tern_ckpt_seal){r->key, o->run_id};
    TERN_TRY(tern_ddp_init(&r->dp, hooks ? hooks->comm : NULL, (int)o->zero, (int)o->overlap));
    r->batch_given = tern_train_opts_is_set(given, "batch");
    /* The owner's policy decides before any data file is opened. */
    if (o->policy || o->site) TERN_TRY(tern_policy_check(o->policy, o->site, o->data_class, r->key != NULL));
    tern_set_threads(tern_ddp_threads(r->dp, (int)o->threads));
    TERN_TRY(tern_backend_open(&r->be, o->device));
    /* ranks on GPUs exchange gradients through NCCL, in device memory (nothing for one process
     * or a CPU backend) */
    if (hooks && hooks->comm) TERN_TRY(tern_comm_use_nccl(hooks->comm, r->be));
    /* auto: bf16 where tensor cores make it the norm (a GPU), fp32 on CPUs */
    const char *prec = strcmp(o->precision, "auto") ? o->precision : tern_backend_is_host(r->be) ? "fp32" : "bf16";
    return tern_backend_set_precision(r->be, prec);
}

/* The data, the model and its optimizer. What needs no memory comes first: the model's shape, the
 * data holding a window, and whether the whole run fits, before the model or its activations are
 * allocated. */
static tern_status run_model(run *r, tern_train_opts *o, char **ckdir) {
    TERN_TRY(open_data(r));
    TERN_TRY(choose_tokenizer(r, o));
    if (o->resume) {
        TERN_TRY(resume_state(r, o, ckdir));
        r->ckpt_step = (long long)r->step;
        if (r->ctl) atomic_store(&r->ctl->ckpt_step, r->ckpt_step);
        /* a run that has done its steps has nothing to do: it is not opened any further, and
         * nothing of it is written */
        if (r->step >= (uint64_t)o->steps) {
            r->finished = 1;
            return TERN_OK;
        }
        /* the changes given now hold from the next step on */
        for (cJSON *c = r->changes->child; c; c = c->next) cJSON_AddNumberToObject(c, "step", (double)r->step + 1);
    }
    TERN_TRY(model_config(r, o, &r->mc));
    size_t B = (size_t)o->batch, T = (size_t)o->seq;
    /* A window holds the rows of all ranks; rank r reads rows r*B .. r*B+B-1 of it. */
    TERN_TRY(train_source_start(&r->src, B * (size_t)tern_ddp_size(r->dp), T, !o->no_shuffle, (uint64_t)o->seed));
    TERN_TRY(check_memory(r, o, &r->mc));
    TERN_TRY(build_model(r, o, &r->mc, *ckdir));
    tern_model_set_anomaly_detection(r->m, o->detect_anomaly);
    tern_model_set_recompute(r->m, o->recompute);
    TERN_TRY(tern_model_reserve(r->m, B, T));
    char *same = tern_train_opts_to_json(o);
    tern_status st = same ? tern_ddp_check_same(r->dp, "options", same, strlen(same)) : tern_err(TERN_ENOMEM, "out of memory");
    free(same);
    TERN_TRY(st);
    TERN_TRY(tern_ddp_attach(r->dp, r->m));
    if (!o->run_id) {
        /* A new run's identifier, made after the ranks compared their options (rank 0 alone
         * writes config.json and the checkpoints, so only its identifier is ever used). */
        uint8_t rb[8];
        randombytes_buf(rb, sizeof rb);
        tern_hex(r->run_id, rb, sizeof rb);
        o->run_id = r->run_id;
        r->seal.run_id = o->run_id;
    }
    size_t shard0, shard1; /* the parameters whose AdamW moments this rank keeps */
    tern_ddp_shard(r->dp, &shard0, &shard1);
    TERN_TRY(tern_adamw_init(&r->opt, tern_model_backend(r->m), shard0, shard1));
    if (o->resume) TERN_TRY(tern_ddp_ckpt_load_optimizer(r->dp, *ckdir, &r->opt, &r->seal));
    r->in = malloc(B * T * sizeof(int32_t));
    r->tg = malloc(B * T * sizeof(int32_t));
    if (!r->in || !r->tg) return tern_err(TERN_ENOMEM, "out of memory for a batch of %zux%zu", B, T);
    return TERN_OK;
}

/* The run folder's files: config.json, the tokenizer and metrics.jsonl for a new run (rank 0
 * alone writes), metrics cut back to the checkpoint for a resumed one, and the ledger. */
/* config.json: the options and the model, and on a resume that changed options the run's history
 * of changes, this one's last. */
static tern_status write_config(run *r, const tern_train_opts *o) {
    cJSON *cj = config_json(o, &r->mc);
    if (cj && r->history && cJSON_GetArraySize(r->history) + cJSON_GetArraySize(r->changes) > 0) {
        cJSON *h = cJSON_Duplicate(r->history, 1);
        for (cJSON *c = r->changes->child; h && c; c = c->next) cJSON_AddItemToArray(h, cJSON_Duplicate(c, 1));
        cJSON_AddItemToObject(cj, "history", h);
    }
    char *cfg = cj ? cJSON_Print(cj) : NULL;
    cJSON_Delete(cj);
    tern_status st = cfg ? write_text(o->out, "config.json", cfg) : tern_err(TERN_ENOMEM, "out of memory");
    free(cfg);
    return st;
}

static tern_status run_folder(run *r, tern_train_opts *o, const char *ckdir, const tern_train_hooks *hooks) {
    tern_status st = tern_mkdir_p(o->out);
    int root = tern_ddp_is_root(r->dp);
    if (st == TERN_OK && root && !o->resume) {
        st = write_config(r, o);
        if (st == TERN_OK) st = keep_tokenizer(r, o->out);
        if (st == TERN_OK && !o->seal_metrics) st = tern_write_file_atomic(r->mpath, "", 0);
    } else if (st == TERN_OK && root) {
        if (cJSON_GetArraySize(r->changes) > 0) st = write_config(r, o);
        if (st == TERN_OK && !o->seal_metrics) st = trim_metrics(r->mpath, r->step);
    }
    TERN_TRY(st);
    if (o->seal_metrics && root) {
        /* sealed metrics live in memory and are sealed over the file at each checkpoint */
        r->metrics = open_memstream(&r->mbuf, &r->mlen);
        if (!r->metrics) return tern_err(TERN_ENOMEM, "out of memory for the metrics");
        if (o->resume) TERN_TRY(load_sealed_metrics(r->mpath, o, r->key, r->step, r->metrics));
        else TERN_TRY(flush_sealed_metrics(r));
    } else {
        r->metrics = fopen(root ? r->mpath : "/dev/null", "a");
        if (!r->metrics) return tern_err(TERN_EIO, "%s: cannot open for appending", r->mpath);
    }
    /* TensorBoard's event file, written line by line with metrics.jsonl (not for sealed metrics,
     * which must not leave the run in plaintext); a resumed run marks its restart, so that
     * TensorBoard drops what an earlier segment wrote past the checkpoint */
    if (root && o->tensorboard && !o->seal_metrics) {
        char *tbdir = tern_path_join(o->out, "tb");
        st = tbdir ? tern_tb_open(&r->tb, tbdir) : tern_err(TERN_ENOMEM, "out of memory");
        free(tbdir);
        if (st == TERN_OK && o->resume) st = tern_tb_session_start(r->tb, (int64_t)r->step + 1, tern_wall_time());
        TERN_TRY(st);
    }
    /* every rank's hardware goes into rank 0's ledger (all ranks take part in the gather) */
    cJSON *hw = NULL;
    st = tern_run_gather_hardware(hooks ? hooks->comm : NULL, &hw);
    if (st == TERN_OK && root)
        st = tern_run_record_open(&r->ledger, &r->sk, o, r->tok_hash, o->resume ? ckdir : NULL, r->step, hw, r->changes);
    cJSON_Delete(hw);
    return st;
}

static void banner(const run *r, const tern_train_opts *o, const char *ckdir, const tern_train_hooks *hooks) {
    size_t np = tern_model_num_params(r->m), B = (size_t)o->batch, T = (size_t)o->seq;
    const tern_model_config *c = &r->mc;
    fprintf(stderr, "%s %s: %s, %d layers, %d heads", o->resume ? "resuming" : "training", o->out, c->arch, c->n_layer, c->n_head);
    if (c->n_kv_head != c->n_head) fprintf(stderr, " (%d key/value)", c->n_kv_head);
    const char *how = tern_backend_precision_how(r->be);
    fprintf(stderr, ", width %d, context %lld, vocabulary %d: %.2fM parameters, on %s in %s%s%s%s\n", c->n_embd, o->seq, c->vocab_size,
            (double)np / 1e6, tern_backend_name(r->be), tern_backend_precision(r->be), *how ? " (" : "", how, *how ? ")" : "");
    fprintf(stderr, "data %s: %llu train tokens%s; %zu rows x %zu tokens x %lld micro-batches per step, %llu steps\n", o->data,
            (unsigned long long)train_source_tokens(&r->src), r->val ? "" : " (no val split)", B, T, o->grad_accum,
            (unsigned long long)o->steps);
    if (o->resume) fprintf(stderr, "from %s (step %llu)\n", ckdir, (unsigned long long)r->step);
    if (tern_ddp_size(r->dp) > 1)
        fprintf(stderr, "%d ranks (%s), %zu rows each: %zu rows per micro-batch; ZeRO stage %lld\n", tern_ddp_size(r->dp),
                tern_comm_name(hooks->comm), B, B * (size_t)tern_ddp_size(r->dp), o->zero);
}

/* The ledger's end entry, then everything the run held. A failure to write the end entry must
 * not hide the run's own error. */
static tern_status run_close(run *r, tern_train_opts *o, tern_status st) {
    if (r->ledger) {
        tern_status run_st = st;
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", tern_errmsg());
        tern_status le = tern_ledger_end(r->ledger, run_st != TERN_OK ? "failed" : r->step >= (uint64_t)o->steps ? "completed" : "stopped",
                                         NULL);
        if (run_st != TERN_OK)
            tern_err(run_st, "%s", msg);
        else
            st = le;
        tern_ledger_close(r->ledger);
    }
    tern_sign_key_free(r->sk);
    if (r->metrics) fclose(r->metrics);
    if (r->mbuf) {
        sodium_memzero(r->mbuf, r->mlen);
        free(r->mbuf);
    }
    if (st != TERN_OK && r->made_dir) {
        forget_new_folder(o->out);
    } else if (st != TERN_OK && r->made_lock && !o->resume && !tern_path_exists(r->cfgpath)) {
        /* a new run refused in a folder that was there: the folder is left as it was found */
        char *lp = tern_path_join(o->out, "lock");
        if (lp) unlink(lp);
        free(lp);
    }
    tern_dir_lock_release(&r->lock);
    tern_key_free(r->key);
    free(r->in);
    free(r->tg);
    tern_adamw_free(&r->opt);
    train_source_free(&r->src);
    if (r->tb) tern_tb_close(r->tb); /* what it wrote is flushed at every line */
    tern_task_free(r->task);
    tern_tok_free(r->tok);
    free(r->tok_dir);
    tern_model_cache_free(r->cache);
    cJSON_Delete(r->changes);
    cJSON_Delete(r->history);
    tern_ddp_free(r->dp);
    tern_model_free(r->m);
    tern_backend_free(r->be);
    free(r->cfgpath);
    free(r->mpath);
    return st;
}

tern_status tern_train_run(const tern_train_opts *given, const tern_train_hooks *hooks) {
    if (!given->out) return tern_err(TERN_EINVAL, "no run folder: give -o RUNDIR");
    tern_train_opts o = *given;
    o.n_owned = 0; /* strings stay owned by `given` */
    run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    r.given = given;
    r.lock.fd = -1;
    r.ckpt_step = -1;
    r.ctl = hooks ? hooks->control : NULL;
    if (r.ctl) {
        atomic_store(&r.ctl->phase, TERN_PHASE_SETUP);
        atomic_store(&r.ctl->ckpt_step, -1);
    }
    r.rundir = (char *)o.out;
    r.cfgpath = tern_path_join(o.out, "config.json");
    r.mpath = tern_path_join(o.out, "metrics.jsonl");
    char *ckdir = NULL;
    tern_status st = r.cfgpath && r.mpath ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    /* Rank 0 writes the run folder: it takes the folder's lock before it reads or writes any of
     * it, so a second trainer (or a --resume of a live run) is refused having changed nothing. */
    if (st == TERN_OK && (!hooks || !hooks->comm || tern_comm_rank(hooks->comm) == 0)) st = take_run_folder(&r, &o);
    if (st == TERN_OK) st = run_open(&r, &o, given, hooks);
    tern_train_hooks rank_hooks = hooks ? *hooks : (tern_train_hooks){0};
    if (r.dp && !tern_ddp_is_root(r.dp)) rank_hooks.progress = 0; /* rank 0 alone prints */
    hooks = &rank_hooks;
    /* records on standard output, the bar on standard error when it is a terminal; step lines
     * unless standard output is that terminal too */
    r.bar = hooks->progress && isatty(2);
    r.lines = hooks->progress && !(r.bar && isatty(1));
    r.last_val = NAN;
    if (st == TERN_OK) st = run_model(&r, &o, &ckdir);
    if (st == TERN_OK && r.finished) {
        if (hooks->progress)
            record(&r, "%s is finished: step %llu of %llu (checkpoint %s); to train further give --resume with --steps N above %llu\n",
                   o.out, (unsigned long long)r.step, (unsigned long long)o.steps, ckdir, (unsigned long long)r.step);
    } else {
        int ended = END_LAST;
        if (st == TERN_OK) st = run_folder(&r, &o, ckdir, hooks);
        if (st == TERN_OK && hooks->progress) {
            banner(&r, &o, ckdir, hooks);
            for (const cJSON *c = r.changes ? r.changes->child : NULL; c; c = c->next) {
                char text[600];
                train_change_text(text, sizeof text, c);
                record(&r, "%s from step %llu\n", text, (unsigned long long)r.step + 1);
            }
        }
        if (st == TERN_OK) st = run_steps(&r, hooks, &ended);
        if (st == TERN_OK && hooks->progress) summary(&r, ended);
    }
    st = run_close(&r, &o, st);
    free(ckdir);
    tern_train_opts_free(&o); /* strings read from config.json on resume */
    return st;
}
