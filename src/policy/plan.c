/* The site planner: for each candidate site, the time and cost of training a model on N
 * tokens there, the time to move data and checkpoints, and whether the owner's policy allows
 * the site; ranked. An estimate from stated inputs (published peak x a stated utilisation on
 * GPUs, measured tokens/s on CPUs), not a measurement of the run. Parameters and FLOPs per token
 * are the model family's (tern_model_config_num_params, tern_model_config_flops_per_token: the
 * 6N + 12*L*C*T count of Kaplan et al. (2020) / PaLM (Chowdhery et al., 2022, appendix B)). */
#include "tern/json.h"
#include "tern/policy.h"

#include "tern/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_DEFAULT_UTILISATION 0.40

/* ---- the model ---- */

tern_status tern_plan_model_from_buffer(tern_plan_model *m, const char *p, size_t n, const char *what) {
    memset(m, 0, sizeof *m);
    cJSON *j;
    TERN_TRY(tern_json_parse(&j, p, n, what));
    tern_status st = TERN_OK;
    if (!cJSON_IsObject(j)) st = tern_err(TERN_EFORMAT, "%s: the model configuration must be a JSON object", what);
    /* Other keys (training settings) may share the file; only the shape is read here, with the
     * names tern train's options use. */
    char arch[16] = "gpt2";
    long L = 0, H = 0, KV = 0, C = 0, V = 0, F = 0;
    if (st == TERN_OK) st = tern_json_string(j, "arch", 0, arch, sizeof arch, what);
    if (st == TERN_OK) st = tern_json_long(j, "n_layer", 1, 1, 100000, &L, what);
    if (st == TERN_OK) st = tern_json_long(j, "n_head", 1, 1, 100000, &H, what);
    if (st == TERN_OK) st = tern_json_long(j, "n_kv_head", 0, 0, 100000, &KV, what);
    if (st == TERN_OK) st = tern_json_long(j, "n_embd", 1, 1, 1L << 20, &C, what);
    if (st == TERN_OK) st = tern_json_long(j, "ffn_dim", 0, 0, 1L << 20, &F, what);
    if (st == TERN_OK) st = tern_json_long(j, "seq", 1, 1, 1L << 24, &m->seq, what);
    if (st == TERN_OK) st = tern_json_long(j, "vocab_size", 1, 1, 1L << 24, &V, what);
    if (st == TERN_OK) st = tern_json_long(j, "batch", 1, 1, 1L << 24, &m->batch, what);
    if (st == TERN_OK && C % H != 0) st = tern_err(TERN_EFORMAT, "%s: n_embd %ld is not a multiple of n_head %ld", what, C, H);
    if (st == TERN_OK) {
        if (!strcmp(arch, "llama")) {
            m->cfg = tern_model_config_llama((int)L, (int)H, (int)KV, (int)C, (int)m->seq, (int)V);
            if (F) m->cfg.ffn_dim = (int)F;
            const cJSON *tie = cJSON_GetObjectItemCaseSensitive(j, "tie_embeddings"), *qb = cJSON_GetObjectItemCaseSensitive(j, "qkv_bias");
            m->cfg.tie_embeddings = cJSON_IsTrue(tie);
            m->cfg.qkv_bias = cJSON_IsTrue(qb);
        } else {
            m->cfg = tern_model_config_gpt2((int)L, (int)H, (int)C, (int)m->seq, (int)V);
            snprintf(m->cfg.arch, sizeof m->cfg.arch, "%s", arch);
        }
        st = tern_model_config_check(&m->cfg);
        if (st != TERN_OK) tern_err_wrap(st, "%s", what);
    }
    cJSON_Delete(j);
    return st;
}

tern_status tern_plan_model_load(tern_plan_model *m, const char *path) {
    char *buf;
    size_t n;
    memset(m, 0, sizeof *m);
    TERN_TRY(tern_read_file(path, &buf, &n));
    tern_status st = tern_plan_model_from_buffer(m, buf, n, path);
    free(buf);
    return st;
}

double tern_plan_params(const tern_plan_model *m) { return (double)tern_model_config_num_params(&m->cfg); }

double tern_plan_flops_per_token(const tern_plan_model *m) { return tern_model_config_flops_per_token(&m->cfg, (size_t)m->seq); }

/* ---- the CPU benchmark ---- */

tern_status tern_plan_measure_cpu(const tern_plan_model *m, double *flops_per_s, char *desc, size_t ndesc) {
    long bt = m->batch * m->seq;
    int M = (int)(bt < 512 ? bt : 512);
    int K = m->cfg.n_embd < 2048 ? m->cfg.n_embd : 2048;
    int N = m->cfg.ffn_dim < 8192 ? m->cfg.ffn_dim : 8192;
    tern_backend *be = tern_backend_default(); /* the matrix product tern trains with */
    double flops, t;
    int calls;
    TERN_TRY(tern_backend_sgemm_rate(be, (size_t)M, (size_t)N, (size_t)K, 0.3, &flops, &calls, &t));
    *flops_per_s = flops;
    snprintf(desc, ndesc,
             "measured here: tern's %s sgemm %dx%dx%d, %.1f GFLOP/s over %d calls (%.2f s); matmul rate only, so an "
             "upper bound",
             tern_backend_name(be), M, K, N, flops / 1e9, calls, t);
    return TERN_OK;
}

/* ---- the plan ---- */

void tern_plan_free(tern_plan *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nrows; i++) tern_site_free(&p->rows[i].site);
    free(p->rows);
    memset(p, 0, sizeof *p);
}

static tern_plan_by sort_by;
static int row_cmp(const void *pa, const void *pb) {
    const tern_plan_row *a = pa, *b = pb;
    int aa = !a->policy_checked || a->verdict.allowed, ba = !b->policy_checked || b->verdict.allowed;
    if (aa != ba) return ba - aa; /* allowed sites first */
    double ka = sort_by == TERN_PLAN_BY_COST ? a->cost : a->total_s, kb = sort_by == TERN_PLAN_BY_COST ? b->cost : b->total_s;
    if (ka != kb) return ka < kb ? -1 : 1;
    ka = sort_by == TERN_PLAN_BY_COST ? a->total_s : a->cost;
    kb = sort_by == TERN_PLAN_BY_COST ? b->total_s : b->cost;
    if (ka != kb) return ka < kb ? -1 : 1;
    return strcmp(a->site.name, b->site.name);
}

static tern_status plan_row(tern_plan *p, tern_plan_row *r, const char *what, double *cpu_flops, char *cpu_desc,
                            size_t ncpu_desc) {
    const tern_site *s = &r->site;
    if (s->nhw != 1)
        return tern_err(TERN_EFORMAT, "%s: the planner needs one accelerator type per site; this site has %zu", what,
                        s->nhw);
    const tern_site_hw *hw = &s->hw[0];
    if (s->price_per_device_hour < 0)
        return tern_err(TERN_EFORMAT, "%s: missing field \"price_per_device_hour\"", what);
    if (!s->at_home && s->bandwidth_gbps <= 0)
        return tern_err(TERN_EFORMAT, "%s: missing field \"bandwidth_to_home_gbps\" (or \"at_home\": true)", what);
    double count = (double)hw->count;
    double F = p->flops_per_token;
    if (s->measure_here) {
        if (hw->kind != TERN_HW_CPU)
            return tern_err(TERN_EFORMAT, "%s: \"tokens_per_s\": \"measure\" benchmarks this machine's CPU; it is for CPU sites", what);
        if (*cpu_flops <= 0) TERN_TRY(tern_plan_measure_cpu(&p->model, cpu_flops, cpu_desc, ncpu_desc));
        double per_host = *cpu_flops / F;
        r->tokens_per_s = per_host * count;
        snprintf(r->throughput_source, sizeof r->throughput_source, "%.1f tokens/s per host, %s", per_host, cpu_desc);
    } else if (s->tokens_per_s > 0) {
        r->tokens_per_s = s->tokens_per_s * count;
        snprintf(r->throughput_source, sizeof r->throughput_source, "site entry: %g measured tokens/s per %s x %ld",
                 s->tokens_per_s, hw->kind == TERN_HW_CPU ? "host" : "device", hw->count);
    } else if (hw->kind == TERN_HW_CPU) {
        return tern_err(TERN_EFORMAT,
                        "%s: a CPU site needs \"tokens_per_s\": tokens/s measured per host, or \"measure\" to "
                        "benchmark this machine",
                        what);
    } else {
        double peak = hw->dense_tops[s->precision];
        if (!(peak > 0))
            return tern_err(TERN_EFORMAT, "%s: %s has no dense %s figure; choose another \"precision\"", what, hw->name,
                            tern_prec_name(s->precision));
        double u = s->utilisation_given ? s->utilisation : PLAN_DEFAULT_UTILISATION;
        r->tokens_per_s = count * peak * 1e12 * u / F;
        snprintf(r->throughput_source, sizeof r->throughput_source,
                 "published peak %g dense %s TFLOPS x %ld devices x utilisation %.2f (%s)", peak,
                 tern_prec_name(s->precision), hw->count, u,
                 s->utilisation_given ? "site entry" : "assumed: tern's default");
    }
    double tps = (double)p->model.batch * (double)p->model.seq; /* tokens per optimizer step */
    r->steps = ceil(p->tokens / tps);
    r->step_s = tps / r->tokens_per_s;
    r->compute_s = r->steps * r->step_s;
    r->move_bytes = s->at_home ? 0 : p->data_bytes + (double)p->checkpoint_transfers * p->checkpoint_bytes;
    r->transfer_s = s->at_home ? 0 : r->move_bytes * 8 / (s->bandwidth_gbps * 1e9);
    r->total_s = r->compute_s + r->transfer_s;
    /* Devices are paid for while they compute; data moves before and after. */
    r->cost = count * s->price_per_device_hour * r->compute_s / 3600.0;
    return TERN_OK;
}

tern_status tern_plan_run(tern_plan *p, const tern_plan_opts *o) {
    memset(p, 0, sizeof *p);
    if (!(o->tokens >= 1) || o->tokens > 1e18 || o->tokens != floor(o->tokens))
        return tern_err(TERN_EINVAL, "--tokens must be a whole number from 1 to 1e18, got %g", o->tokens);
    TERN_TRY(tern_plan_model_load(&p->model, o->config_path));
    p->tokens = o->tokens;
    p->by = o->by;
    p->params = tern_plan_params(&p->model);
    p->flops_per_token = tern_plan_flops_per_token(&p->model);
    p->checkpoint_bytes = 12 * p->params; /* fp32 weights + AdamW first and second moments */
    p->checkpoint_transfers = 1;
    int bpt = p->model.cfg.vocab_size <= 65536 ? 2 : 4;
    p->data_bytes = p->tokens * bpt;
    snprintf(p->data_bytes_source, sizeof p->data_bytes_source, "tokens x %d bytes per token id (vocab_size %s 65536)",
             bpt, bpt == 2 ? "<=" : ">");

    tern_policy *pol = NULL;
    if (o->policy_path) TERN_TRY(tern_policy_load(&pol, o->policy_path));
    cJSON *j = NULL;
    tern_status st = tern_json_load(&j, o->sites_path);
    static const char *const keys[] = {"sites", "data_bytes", "checkpoint_transfers", "note", NULL};
    const cJSON *sites = NULL;
    if (st == TERN_OK && !cJSON_IsObject(j))
        st = tern_err(TERN_EFORMAT, "%s: the sites file must be a JSON object with a \"sites\" array", o->sites_path);
    if (st == TERN_OK) st = tern_json_check_keys(j, keys, o->sites_path);
    if (st == TERN_OK && cJSON_HasObjectItem(j, "data_bytes")) {
        st = tern_json_number(j, "data_bytes", 1, &p->data_bytes, o->sites_path);
        if (st == TERN_OK && p->data_bytes < 0)
            st = tern_err(TERN_EFORMAT, "%s: \"data_bytes\" must not be negative", o->sites_path);
        snprintf(p->data_bytes_source, sizeof p->data_bytes_source, "data_bytes in %s", o->sites_path);
    }
    if (st == TERN_OK)
        st = tern_json_long(j, "checkpoint_transfers", 0, 0, 1000000, &p->checkpoint_transfers, o->sites_path);
    if (st == TERN_OK) {
        sites = cJSON_GetObjectItemCaseSensitive(j, "sites");
        if (!cJSON_IsArray(sites) || cJSON_GetArraySize(sites) == 0)
            st = tern_err(TERN_EFORMAT, "%s: \"sites\" must be a non-empty array", o->sites_path);
        else if (cJSON_GetArraySize(sites) > 10000)
            st = tern_err(TERN_EFORMAT, "%s: more than 10000 sites", o->sites_path);
    }
    if (st == TERN_OK) {
        p->rows = calloc((size_t)cJSON_GetArraySize(sites), sizeof *p->rows);
        if (!p->rows) st = tern_err(TERN_ENOMEM, "out of memory planning %s", o->sites_path);
    }
    double cpu_flops = 0;
    char cpu_desc[200] = "";
    int i = 0;
    for (const cJSON *e = st == TERN_OK ? sites->child : NULL; e && st == TERN_OK; e = e->next, i++) {
        char what[600];
        tern_fmt(what, sizeof what, "%s: sites[%d]", o->sites_path, i);
        tern_plan_row *r = &p->rows[p->nrows];
        st = tern_site_from_json(&r->site, e, what);
        if (st != TERN_OK) break;
        p->nrows++;
        tern_fmt(what, sizeof what, "%s: site \"%s\"", o->sites_path, r->site.name);
        for (size_t k = 0; k + 1 < p->nrows; k++)
            if (!strcmp(p->rows[k].site.name, r->site.name))
                st = tern_err(TERN_EFORMAT, "%s: site name \"%s\" is used twice", o->sites_path, r->site.name);
        if (st == TERN_OK) st = plan_row(p, r, what, &cpu_flops, cpu_desc, sizeof cpu_desc);
        if (st == TERN_OK && pol) {
            st = tern_policy_eval(pol, &r->site, o->data_class, o->sealed, &r->verdict);
            r->policy_checked = 1;
        }
    }
    cJSON_Delete(j);
    tern_policy_free(pol);
    if (st != TERN_OK) {
        tern_plan_free(p);
        return st;
    }
    sort_by = o->by;
    qsort(p->rows, p->nrows, sizeof *p->rows, row_cmp);
    for (size_t k = 0; k < p->nrows; k++) p->rows[k].rank = (int)k + 1;
    return TERN_OK;
}

tern_status tern_plan_json(const tern_plan *p, cJSON **out) {
    cJSON *o = cJSON_CreateObject(), *rows = NULL, *model = NULL;
    int ok = o != NULL;
    if (ok) {
        ok &= (model = cJSON_AddObjectToObject(o, "model")) != NULL;
        if (ok) {
            ok &= cJSON_AddStringToObject(model, "arch", p->model.cfg.arch) != NULL;
            ok &= cJSON_AddNumberToObject(model, "n_layer", (double)p->model.cfg.n_layer) != NULL;
            ok &= cJSON_AddNumberToObject(model, "n_head", (double)p->model.cfg.n_head) != NULL;
            ok &= cJSON_AddNumberToObject(model, "n_embd", (double)p->model.cfg.n_embd) != NULL;
            ok &= cJSON_AddNumberToObject(model, "seq", (double)p->model.seq) != NULL;
            ok &= cJSON_AddNumberToObject(model, "vocab_size", (double)p->model.cfg.vocab_size) != NULL;
            ok &= cJSON_AddNumberToObject(model, "batch", (double)p->model.batch) != NULL;
        }
        ok &= cJSON_AddNumberToObject(o, "params", p->params) != NULL;
        ok &= cJSON_AddNumberToObject(o, "flops_per_token", p->flops_per_token) != NULL;
        ok &= cJSON_AddNumberToObject(o, "tokens", p->tokens) != NULL;
        ok &= cJSON_AddNumberToObject(o, "tokens_per_step", (double)p->model.batch * (double)p->model.seq) != NULL;
        ok &= cJSON_AddNumberToObject(o, "data_bytes", p->data_bytes) != NULL;
        ok &= cJSON_AddStringToObject(o, "data_bytes_source", p->data_bytes_source) != NULL;
        ok &= cJSON_AddNumberToObject(o, "checkpoint_bytes", p->checkpoint_bytes) != NULL;
        ok &= cJSON_AddNumberToObject(o, "checkpoint_transfers", (double)p->checkpoint_transfers) != NULL;
        ok &= cJSON_AddStringToObject(o, "ranked_by", p->by == TERN_PLAN_BY_COST ? "cost" : "time") != NULL;
        ok &= (rows = cJSON_AddArrayToObject(o, "sites")) != NULL;
    }
    for (size_t i = 0; ok && i < p->nrows; i++) {
        const tern_plan_row *r = &p->rows[i];
        const tern_site_hw *hw = &r->site.hw[0];
        cJSON *s = cJSON_CreateObject();
        if (!(ok = s != NULL)) break;
        cJSON_AddItemToArray(rows, s);
        ok &= cJSON_AddNumberToObject(s, "rank", r->rank) != NULL;
        ok &= cJSON_AddStringToObject(s, "site", r->site.name) != NULL;
        ok &= cJSON_AddStringToObject(s, "operator", r->site.operator_name) != NULL;
        ok &= cJSON_AddStringToObject(s, "country", r->site.country) != NULL;
        ok &= cJSON_AddStringToObject(s, "accelerator", hw->name) != NULL;
        ok &= cJSON_AddStringToObject(s, "kind", hw->kind == TERN_HW_CPU ? "cpu" : "gpu") != NULL;
        ok &= cJSON_AddNumberToObject(s, "count", (double)hw->count) != NULL;
        ok &= cJSON_AddStringToObject(s, "eccn_3a090", tern_3a090_name(hw->cls.cls)) != NULL;
        ok &= tern_json_add_num(s, "tpp", hw->cls.tpp, 0) != NULL;
        ok &= cJSON_AddNumberToObject(s, "tokens_per_s", r->tokens_per_s) != NULL;
        ok &= cJSON_AddStringToObject(s, "throughput_source", r->throughput_source) != NULL;
        ok &= cJSON_AddNumberToObject(s, "steps", r->steps) != NULL;
        ok &= cJSON_AddNumberToObject(s, "step_s", r->step_s) != NULL;
        ok &= cJSON_AddNumberToObject(s, "compute_s", r->compute_s) != NULL;
        ok &= cJSON_AddNumberToObject(s, "move_bytes", r->move_bytes) != NULL;
        ok &= cJSON_AddNumberToObject(s, "transfer_s", r->transfer_s) != NULL;
        ok &= cJSON_AddNumberToObject(s, "total_s", r->total_s) != NULL;
        ok &= cJSON_AddNumberToObject(s, "price_per_device_hour", r->site.price_per_device_hour) != NULL;
        ok &= cJSON_AddNumberToObject(s, "cost", r->cost) != NULL;
        cJSON *pv = cJSON_AddObjectToObject(s, "policy");
        ok &= pv != NULL;
        if (!ok) break;
        if (!r->policy_checked) {
            ok &= cJSON_AddNullToObject(pv, "allowed") != NULL;
            ok &= cJSON_AddStringToObject(pv, "reason", "no policy given") != NULL;
        } else {
            ok &= cJSON_AddBoolToObject(pv, "allowed", r->verdict.allowed) != NULL;
            if (r->verdict.allowed) {
                ok &= cJSON_AddNullToObject(pv, "rule") != NULL;
                ok &= cJSON_AddNullToObject(pv, "reason") != NULL;
            } else {
                ok &= cJSON_AddStringToObject(pv, "rule", r->verdict.rule_id) != NULL;
                ok &= cJSON_AddStringToObject(pv, "rule_type", r->verdict.rule_type) != NULL;
                ok &= cJSON_AddStringToObject(pv, "reason", r->verdict.reason) != NULL;
            }
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return tern_err(TERN_ENOMEM, "out of memory building the plan");
    }
    *out = o;
    return TERN_OK;
}
