/* Inside model/: the family interface and the model's state. model.c holds what every family
 * shares (the tensor table, buffers on the backend, the head and cross-entropy in chunks, the
 * loss, anomaly checks, the cache shell); a family file (gpt2.c, llama.c) holds one table of the
 * functions below and its arithmetic as sequences of backend kernels. Not included outside
 * src/model/. */
#ifndef TERN_MODEL_INT_H
#define TERN_MODEL_INT_H
#include "backend/backend_int.h"
#include "tern/model.h"

/* The head and the cross-entropy run over chunks of this many rows (positions), so that no
 * (B*T, V) matrix of logits is kept when training (823 MB at GPT-2 small's B 4, T 1024). */
#define HEAD_CHUNK 512
#define HEAD_ROWS(n) ((n) < HEAD_CHUNK ? (n) : HEAD_CHUNK)
#define MODEL_MAX_SLOTS 48

typedef struct tern_family {
    const char *name;
    /* Prefix of every tensor name in a Hugging Face folder and in checkpoints ("transformer." for
     * GPT-2, whose table names leave it out; "" for Llama, whose names are whole). */
    const char *hf_prefix;
    tern_status (*check)(const tern_model_config *c);
    /* At tern_model_init and tern_model_free (may be NULL): constants of the family kept for the
     * model's life in m->fc (Llama's rotary frequencies on the backend). */
    tern_status (*setup)(tern_model *m);
    void (*teardown)(tern_model *m);
    /* Fills the tensor table in flat-buffer order (t may be NULL to count) and returns its size;
     * offsets and numel are the caller's to fill. */
    size_t (*tensors)(const tern_model_config *c, tern_tensor *t);
    /* The family's activation slots for batches of B x T: floats of each into sizes (may be
     * NULL); returns how many. */
    size_t (*acts)(const tern_model_config *c, size_t B, size_t T, int recompute, size_t *sizes);
    /* After the slots are laid out (m->slot): points m->xf (the final norm's output, (N,C), the
     * head's input) and m->dxf (where the head puts its gradient), and the family's own state. */
    tern_status (*bind)(tern_model *m);
    void (*unbind)(tern_model *m);
    /* The embeddings, the blocks and the final norm over the batch in m->inputs (m->B x m->T),
     * into m->xf. */
    void (*forward)(tern_model *m);
    /* From d loss / d xf in m->dxf down to the embeddings, accumulating into m->grads and calling
     * tern_model_hook as units of gradients become final. */
    void (*backward)(tern_model *m);
    /* One token at position pos through the blocks, with the cache's keys and values: from the
     * token in c->tok to the final norm's output in c->x. */
    void (*decode)(tern_model *m, tern_model_cache *c, size_t pos);
    /* The name of the head's (V, C) weight tensor. */
    const char *(*head)(const tern_model_config *c);
    double (*flops_per_token)(const tern_model_config *c, size_t T);
} tern_family;

extern const tern_family tern_family_gpt2, tern_family_llama;
const tern_family *tern_family_of(const tern_model_config *c);

struct tern_model {
    tern_model_config cfg;
    const tern_family *fam;
    tern_backend *be;
    const tern_kern *k;
    float *params, *grads; /* the backend's memory, in tensor-table order */
    size_t num_params;
    tern_tensor *tensors;
    size_t num_tensors;
    float *head_w, *head_dw; /* the head's weight (V,C) and its gradient, inside params/grads */
    /* activations for the reserved shape: the family's slots, then the head's */
    float *acts;
    size_t acts_floats, resB, resT;
    float *slot[MODEL_MAX_SLOTS];
    size_t nslots;
    float *xf, *dxf;           /* set by the family's bind */
    float *logits, *losses;    /* one chunk of logits (HEAD_ROWS x V); the per-position losses (B*T) */
    int32_t *inputs, *targets; /* the last batch, in the backend's memory (resB*resT) */
    float *full_logits;        /* (B,T,V) of the last forward without targets; allocated then */
    size_t full_logits_cap;
    size_t B, T;               /* shape of the last forward */
    int have_targets;
    int detect;                /* check every kernel's output for non-finite values */
    int recompute;             /* keep one block's inner activations; recompute in backward */
    char anomaly[160];         /* the first kernel that produced one, "" if none */
    tern_grad_hook grad_hook;
    void *grad_hook_ctx;
    void *fs;                  /* the family's state for the reserved shape (from bind) */
    void *fc;                  /* the family's constants (from setup) */
};

struct tern_model_cache {
    tern_backend *be;          /* the model's, which owns the buffers */
    size_t len, cap, kvw;      /* positions held, the most, floats per position per layer (n_kv_head * head_dim) */
    float *kc, *vc;            /* (L, cap, kvw) each, in the backend's memory */
    float *x, *h, *qkv, *y, *f1, *f2, *tmp, *att, *dlogits; /* one position's activations (backend) */
    float *mean, *rstd;
    int32_t *tok;              /* the token being fed (backend) */
    float *logits;             /* (V) on the host, returned by tern_model_cache_step */
};

/* With detection on, records the first kernel whose output holds a non-finite value. */
void tern_model_check_out(tern_model *m, const float *p, size_t n, const char *kernel, long layer);
/* Tells the grad hook, if any, that a unit's gradients are final. */
void tern_model_hook(tern_model *m, int unit);
/* The tensor of a name within the table, as a pointer into params (grads when g is set). */
float *tern_model_ptr(tern_model *m, const char *name, int g);
#endif
