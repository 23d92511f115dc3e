/* tern policy: site declarations, the owner's policy gate (whether a run may start at a site, for
 * a class of data, sealed or not) and the site planner (how long and how much a run would take at
 * each site). It applies the owner's own rules to the figures of tern/hw.h; it is not legal
 * advice and decides nothing about licences. docs/COMPLIANCE.md gives every source. */
#ifndef TERN_POLICY_H
#define TERN_POLICY_H

#include "tern/hw.h"
#include "tern/model.h"

/* ---- site declarations ---- */
typedef struct tern_site_hw {
    char accelerator[64];    /* a name from tern's table, "cpu", "custom" or "this-host" */
    char name[128];          /* what to call it in messages */
    long count;              /* devices (GPUs) or hosts (CPUs) */
    tern_hw_kind kind;
    double dense_tops[TERN_PREC_COUNT];
    tern_hw_class cls;
} tern_site_hw;

typedef struct tern_site {
    char *path;              /* the file it came from, or a description */
    char name[128];          /* "site" */
    char operator_name[128]; /* "operator" */
    char country[3];         /* ISO 3166-1 alpha-2, upper case */
    size_t nhw;
    tern_site_hw *hw;
    /* planning fields, read when the site appears in a planner's SITES.json */
    double price_per_device_hour; /* < 0 when absent */
    double bandwidth_gbps;        /* to home, Gbit/s; < 0 when absent */
    int at_home;                  /* no data or checkpoints move */
    double utilisation;           /* GPU sites; < 0 when absent */
    int utilisation_given;
    tern_prec precision;          /* GPU sites: the precision training runs at (default bf16) */
    double tokens_per_s;          /* CPU sites, per host; < 0 when absent */
    int measure_here;             /* CPU sites: "tokens_per_s": "measure" */
} tern_site;
/* Parses a site object. `what` names it in messages (the file, or "FILE: sites[2]"). */
tern_status tern_site_from_json(tern_site *s, const struct cJSON *obj, const char *what);
tern_status tern_site_from_buffer(tern_site *s, const char *p, size_t n, const char *what);
tern_status tern_site_load(tern_site *s, const char *path);
void tern_site_free(tern_site *s);
/* 1 if cc is an officially assigned ISO 3166-1 alpha-2 code (upper case). */
int tern_country_valid(const char *cc);

/* ---- the owner's policy ---- */
typedef struct tern_policy tern_policy;
tern_status tern_policy_from_buffer(tern_policy **out, const char *p, size_t n, const char *what);
tern_status tern_policy_load(tern_policy **out, const char *path);
void tern_policy_free(tern_policy *pol);

typedef struct tern_policy_verdict {
    int allowed;
    char rule_id[128];   /* the forbidding rule, "" when allowed */
    char rule_type[32];
    char reason[768];    /* why, naming the data class, countries, site and hardware */
} tern_policy_verdict;
/* Evaluates every rule in order; the first that forbids decides. site may be NULL (then a rule
 * that needs to know the country forbids, saying so); data_class NULL means unclassified;
 * sealed: whether the run seals its files. Returns TERN_OK with v filled in. */
tern_status tern_policy_eval(const tern_policy *pol, const tern_site *site, const char *data_class, int sealed,
                             tern_policy_verdict *v);

/* Evaluates the owner's policy for a run. site_path/policy_path may be NULL (no policy: allowed).
   data_class may be NULL (unclassified). sealed: whether the run seals its files (--key given).
   Returns TERN_OK if allowed; TERN_EPOLICY with tern_errmsg() naming the policy file, the rule (its id/name) and why, if forbidden;
   TERN_EFORMAT/TERN_EIO for bad files (TERN_ENOTFOUND for a missing one). Must not touch any data file. */
tern_status tern_policy_check(const char *policy_path, const char *site_path, const char *data_class, int sealed);

/* ---- the site planner ---- */
typedef struct tern_plan_model {
    tern_model_config cfg; /* the family and shape (n_ctx = seq) */
    long seq, batch;
} tern_plan_model;
tern_status tern_plan_model_from_buffer(tern_plan_model *m, const char *p, size_t n, const char *what);
tern_status tern_plan_model_load(tern_plan_model *m, const char *path);
/* The model family's parameter count (GPT-2 with tied embeddings: V*C + T*C + L*(12*C*C + 13*C)
 * + 2*C) and training FLOPs per token (forward and backward: 6 per parameter in a matrix product
 * + 12*L*C*T; tern_model_config_flops_per_token). */
double tern_plan_params(const tern_plan_model *m);
double tern_plan_flops_per_token(const tern_plan_model *m);

typedef enum { TERN_PLAN_BY_TIME, TERN_PLAN_BY_COST } tern_plan_by;

typedef struct tern_plan_row {
    tern_site site;
    double tokens_per_s;       /* whole site */
    char throughput_source[224];
    double step_s, steps, compute_s, transfer_s, total_s, cost;
    double move_bytes;          /* data in plus checkpoints out */
    int policy_checked;
    tern_policy_verdict verdict;
    int rank;                   /* 1-based, after sorting */
} tern_plan_row;

typedef struct tern_plan {
    tern_plan_model model;
    double params, flops_per_token, tokens;
    double data_bytes;          /* token data moved to a site */
    char data_bytes_source[96];
    double checkpoint_bytes;    /* one checkpoint: fp32 weights + two AdamW moments */
    long checkpoint_transfers;
    tern_plan_by by;
    size_t nrows;
    tern_plan_row *rows;        /* ranked */
} tern_plan;

typedef struct tern_plan_opts {
    const char *sites_path, *config_path, *policy_path; /* policy may be NULL */
    double tokens;
    const char *data_class;     /* NULL: unclassified */
    int sealed;
    tern_plan_by by;
} tern_plan_opts;
tern_status tern_plan_run(tern_plan *out, const tern_plan_opts *o);
tern_status tern_plan_json(const tern_plan *p, struct cJSON **out);
void tern_plan_free(tern_plan *p);
/* The CPU benchmark behind "tokens_per_s": "measure": tern's own sgemm kernel (backend/, the one
 * training uses) on this machine at the model's matmul shape (rows = min(batch*seq, 512),
 * K = n_embd, N = 4*n_embd, capped) for about 0.3 s; returns the achieved FLOP/s and describes
 * the shape in desc. */
tern_status tern_plan_measure_cpu(const tern_plan_model *m, double *flops_per_s, char *desc, size_t ndesc);

#endif
