/* `tern plan`: ranks candidate sites for a training run by time (or cost), with the time to move
 * data and checkpoints and the owner's policy verdict for each. Only parses options and prints;
 * the estimate is policy/plan.c's, from the inputs docs/COMPLIANCE.md ("The planner") describes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: tern plan --sites SITES.json --config CONFIG.json --tokens N [--policy POLICY.json]\n"
    "                 [--data-class NAME] [--sealed] [--by time|cost] [--json]\n"
    "\n"
    "For each candidate site: tokens/s (published peak x utilisation on GPUs, measured tokens/s on\n"
    "CPUs), step time, compute time and cost, the time to move the data there and checkpoints home,\n"
    "and whether POLICY allows the site for data of class NAME (sealed or not). Sites the policy\n"
    "allows rank first, then by total time (or cost).\n"
    "\n"
    "  CONFIG.json   model shape: n_layer, n_head, n_embd, seq, vocab_size, batch\n"
    "  SITES.json    {\"sites\": [{\"site\", \"operator\", \"country\", \"accelerator\", \"count\",\n"
    "                \"price_per_device_hour\", \"bandwidth_to_home_gbps\" or \"at_home\": true,\n"
    "                \"utilisation\" (GPUs), \"tokens_per_s\" (CPUs: a number, or \"measure\")}],\n"
    "                \"data_bytes\", \"checkpoint_transfers\"}  (docs/COMPLIANCE.md)\n";

/* Seconds in a form a reader takes in at a glance. */
static void fmt_time(char *out, size_t n, double s) {
    if (!(s >= 0) || isinf(s))
        snprintf(out, n, "?");
    else if (s == 0)
        snprintf(out, n, "0s");
    else if (s < 1)
        snprintf(out, n, "%.3gms", s * 1000);
    else if (s < 10)
        snprintf(out, n, "%.3fs", s);
    else if (s < 86400)
        tern_fmt_duration(out, n, s);
    else if (s < 1e12)
        snprintf(out, n, "%dd%02dh", (int)(s / 86400), (int)(fmod(s, 86400) / 3600));
    else
        snprintf(out, n, "%.3gs", s);
}

static void fmt_money(char *out, size_t n, double v) {
    char raw[64];
    snprintf(raw, sizeof raw, "%.2f", v);
    char *dot = strchr(raw, '.');
    size_t ilen = dot ? (size_t)(dot - raw) : strlen(raw), k = 0;
    char buf[96];
    for (size_t i = 0; i < ilen && k < sizeof buf - 8; i++) {
        if (i && (ilen - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
    snprintf(out, n, "%s%s", buf, dot ? dot : "");
}

/* The plan as JSON, with what the command was asked. */
static int print_json(tern_plan *p, const tern_plan_opts *o) {
    cJSON *j;
    tern_status st = tern_plan_json(p, &j);
    if (st != TERN_OK) {
        tern_plan_free(p);
        cli_fail("plan", st);
    }
    if (o->policy_path) cJSON_AddStringToObject(j, "policy", o->policy_path);
    else cJSON_AddNullToObject(j, "policy");
    if (o->data_class) cJSON_AddStringToObject(j, "data_class", o->data_class);
    else cJSON_AddNullToObject(j, "data_class");
    cJSON_AddBoolToObject(j, "sealed", o->sealed);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) {
        fprintf(stderr, "tern plan: out of memory printing JSON\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

/* The plan as a table: the model and run, one row per site, where each throughput came from,
 * and what the policy refused. */
static void print_table(const tern_plan *p, const tern_plan_opts *o) {
    printf("model: %s, %d layers, %d heads, n_embd %d, seq %ld, vocab %d, batch %ld: %.4g parameters, "
           "%.4g FLOPs/token (6N + 12*L*C*T)\n",
           p->model.cfg.arch, p->model.cfg.n_layer, p->model.cfg.n_head, p->model.cfg.n_embd, p->model.seq, p->model.cfg.vocab_size,
           p->model.batch, p->params, p->flops_per_token);
    printf("run: %.4g tokens, %.0f tokens per step; moves %.4g bytes of data (%s) and %ld checkpoint%s of %.4g bytes\n",
           p->tokens, (double)p->model.batch * (double)p->model.seq, p->data_bytes, p->data_bytes_source,
           p->checkpoint_transfers, p->checkpoint_transfers == 1 ? "" : "s", p->checkpoint_bytes);
    printf("policy: %s, data class %s, %s; ranked by %s\n\n", o->policy_path ? o->policy_path : "none",
           o->data_class ? o->data_class : "(unclassified)", o->sealed ? "sealed" : "not sealed",
           o->by == TERN_PLAN_BY_COST ? "cost" : "time");
    printf("%-4s %-16s %-2s %-12s %6s %-10s %12s %9s %9s %9s %9s %14s  %s\n", "rank", "site", "cc", "accelerator",
           "count", "3A090", "tokens/s", "step", "compute", "transfer", "total", "cost", "policy");
    for (size_t i = 0; i < p->nrows; i++) {
        const tern_plan_row *r = &p->rows[i];
        char step[32], comp[32], tr[32], tot[32], cost[128], tps[32];
        fmt_time(step, sizeof step, r->step_s);
        fmt_time(comp, sizeof comp, r->compute_s);
        fmt_time(tr, sizeof tr, r->transfer_s);
        fmt_time(tot, sizeof tot, r->total_s);
        fmt_money(cost, sizeof cost, r->cost);
        snprintf(tps, sizeof tps, "%.4g", r->tokens_per_s);
        const char *pol = !r->policy_checked ? "-" : r->verdict.allowed ? "allowed" : "FORBIDDEN";
        printf("%-4d %-16s %-2s %-12s %6ld %-10s %12s %9s %9s %9s %9s %14s  %s%s%s\n", r->rank, r->site.name,
               r->site.country, r->site.hw[0].name, r->site.hw[0].count, tern_3a090_name(r->site.hw[0].cls.cls), tps,
               step, comp, tr, tot, cost, pol, r->policy_checked && !r->verdict.allowed ? " by " : "",
               r->policy_checked && !r->verdict.allowed ? r->verdict.rule_id : "");
    }
    printf("\nthroughput:\n");
    for (size_t i = 0; i < p->nrows; i++)
        printf("  %-16s %s\n", p->rows[i].site.name, p->rows[i].throughput_source);
    int any = 0;
    for (size_t i = 0; i < p->nrows; i++) {
        const tern_plan_row *r = &p->rows[i];
        if (!r->policy_checked || r->verdict.allowed) continue;
        if (!any) printf("\nrefused by the policy:\n");
        any = 1;
        printf("  %-16s rule \"%s\" (%s): %s\n", r->site.name, r->verdict.rule_id, r->verdict.rule_type, r->verdict.reason);
    }
    printf("\ncost counts device-hours of compute at each site's price; moving data is not charged.\n"
           "tern reports estimates and applies the owner's policy; it is not legal advice.\n");
}

int cli_plan(int argc, char **argv) {
    tern_plan_opts o;
    memset(&o, 0, sizeof o);
    const char *tokens = NULL, *by = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_opt_str("plan", argc, argv, &i, "--sites", &o.sites_path)) continue;
        if (cli_opt_str("plan", argc, argv, &i, "--config", &o.config_path)) continue;
        if (cli_opt_str("plan", argc, argv, &i, "--policy", &o.policy_path)) continue;
        if (cli_opt_str("plan", argc, argv, &i, "--data-class", &o.data_class)) continue;
        if (cli_opt_str("plan", argc, argv, &i, "--tokens", &tokens)) continue;
        if (cli_opt_str("plan", argc, argv, &i, "--by", &by)) continue;
        if (cli_flag(argv, i, "--sealed")) {
            o.sealed = 1;
        } else if (cli_flag(argv, i, "--json")) {
            json = 1;
        } else if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else {
            cli_usage("plan", "unknown option '%s' (see tern plan --help)", argv[i]);
        }
    }
    if (!o.sites_path) cli_usage("plan", "--sites SITES.json is required");
    if (!o.config_path) cli_usage("plan", "--config CONFIG.json is required");
    if (!tokens) cli_usage("plan", "--tokens N is required");
    char *end;
    o.tokens = strtod(tokens, &end);
    if (end == tokens || *end || !(o.tokens >= 1) || o.tokens > 1e18 || o.tokens != floor(o.tokens))
        cli_usage("plan", "--tokens needs a whole number from 1 to 1e18, got '%s'", tokens);
    o.by = TERN_PLAN_BY_TIME;
    if (by && !strcmp(by, "cost"))
        o.by = TERN_PLAN_BY_COST;
    else if (by && strcmp(by, "time"))
        cli_usage("plan", "--by takes time or cost, got '%s'", by);

    tern_plan p;
    tern_status st = tern_plan_run(&p, &o);
    if (st != TERN_OK) cli_fail("plan", st);
    int rc = json ? print_json(&p, &o) : (print_table(&p, &o), 0);
    tern_plan_free(&p);
    return rc;
}
