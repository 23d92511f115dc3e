/* Tests of the site planner (policy/plan.c and `tern plan`): on the three-site fixture under
 * tests/fixtures/policy/, the ranking and every time and cost figure against a hand computation
 * written out below from the cited inputs; the policy verdicts; the CPU benchmark; bad input. */
#include <cjson/cJSON.h>

#include "check.h"
#include "tern.h"

#define FX "tests/fixtures/policy/"

/* The hand computation. GPT-2 small (12 layers, n_embd 768, seq 1024, vocab 50257) with tied
 * embeddings has 124,439,808 parameters (the figure Hugging Face's gpt2 reports):
 *   wte 50257*768 = 38,597,376; wpe 1024*768 = 786,432;
 *   12 blocks x (12*768^2 + 13*768 = 7,087,872) = 85,054,464; final layernorm 1,536.
 * FLOPs/token = 6 x (124,439,808 - wpe's 786,432, a lookup rather than a product)
 *   + 12 x 12 x 768 x 1024 = 741,920,256 + 113,246,208 = 855,166,464.
 * 1e10 tokens at batch 8 x seq 1024 = 8192 tokens/step: ceil(1,220,703.125) = 1,220,704 steps.
 * Moved to a site abroad: 1e10 tokens x 2 bytes + one checkpoint of 12 x N = 1,493,277,696 bytes. */
#define HAND_N 124439808.0
#define HAND_F 855166464.0
#define HAND_STEPS 1220704.0
#define HAND_MOVE (2e10 + 12 * HAND_N)

typedef struct {
    const char *site;
    double tokens_per_s, step_s, compute_s, transfer_s, total_s, cost;
} hand_row;

static void hand(hand_row *h, const char *site, double tokens_per_s, double count, double price, double gbps) {
    h->site = site;
    h->tokens_per_s = tokens_per_s;
    h->step_s = 8192 / tokens_per_s;
    h->compute_s = HAND_STEPS * h->step_s;
    h->transfer_s = gbps > 0 ? HAND_MOVE * 8 / (gbps * 1e9) : 0;
    h->total_s = h->compute_s + h->transfer_s;
    h->cost = count * price * h->compute_s / 3600;
}

static void hand_rows(hand_row *cpu, hand_row *h100, hand_row *a100) {
    /* home-cpu: 4 hosts x 2,000 measured tokens/s (site entry), 0.50 per host-hour, at home. */
    hand(cpu, "home-cpu", 4 * 2000.0, 4, 0.50, 0);
    /* us-h100: 8 x 989.5 TFLOPS dense BF16 (H100 datasheet) x 0.40 / F; 2.50/h; 10 Gbit/s. */
    hand(h100, "us-h100", 8 * 989.5e12 * 0.40 / HAND_F, 8, 2.50, 10);
    /* sg-a100: 8 x 312 TFLOPS dense BF16 (A100 datasheet) x 0.50 / F; 0.50/h; 1 Gbit/s. */
    hand(a100, "sg-a100", 8 * 312e12 * 0.50 / HAND_F, 8, 0.50, 1);
}

/* The planner must agree with the model to 1%; the arithmetic is the same, so much closer is expected. */
static int near(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b) + 1e-12; }

static cJSON *plan_json(const char *extra, int *rc) {
    static char out[1 << 17];
    *rc = run_cmd(out, sizeof out, "%s plan --sites " FX "plan_sites.json --config " FX "plan_config.json --tokens 1e10 %s --json",
                  test_tern_bin(), extra);
    cJSON *j = cJSON_Parse(out);
    if (!j) printf("  not JSON: %.400s\n", out);
    return j;
}

static void check_row(const cJSON *s, const hand_row *h, int rank) {
    const char *name = cJSON_GetObjectItem(s, "site")->valuestring;
    CHECK(!strcmp(name, h->site), "rank %d: %s, want %s", rank, name, h->site);
    CHECK(cJSON_GetObjectItem(s, "rank")->valueint == rank, "%s rank", h->site);
#define F(key, want) CHECK(near(cJSON_GetObjectItem(s, key)->valuedouble, want), "%s %s: %.10g, hand %.10g", h->site, key, cJSON_GetObjectItem(s, key)->valuedouble, want)
    F("tokens_per_s", h->tokens_per_s);
    F("step_s", h->step_s);
    F("compute_s", h->compute_s);
    F("total_s", h->total_s);
    F("cost", h->cost);
    F("steps", HAND_STEPS);
    if (h->transfer_s > 0)
        F("transfer_s", h->transfer_s);
    else
        CHECK(cJSON_GetObjectItem(s, "transfer_s")->valuedouble == 0, "%s at home moves nothing", h->site);
#undef F
}

static void test_hand_computation(void) {
    tern_plan_model m = {tern_model_config_gpt2(12, 12, 768, 1024, 50257), 1024, 8};
    CHECK(tern_plan_params(&m) == HAND_N, "params %.0f", tern_plan_params(&m));
    CHECK(tern_plan_flops_per_token(&m) == HAND_F, "flops %.0f", tern_plan_flops_per_token(&m));
    hand_row cpu, h100, a100;
    hand_rows(&cpu, &h100, &a100);
    int rc;
    cJSON *j = plan_json("", &rc);
    CHECK(rc == 0 && j, "exit %d", rc);
    if (!j) return;
    CHECK(cJSON_GetObjectItem(j, "params")->valuedouble == HAND_N && cJSON_GetObjectItem(j, "flops_per_token")->valuedouble == HAND_F, "model");
    CHECK(cJSON_GetObjectItem(j, "data_bytes")->valuedouble == 2e10 && cJSON_GetObjectItem(j, "checkpoint_bytes")->valuedouble == 12 * HAND_N, "bytes");
    const cJSON *sites = cJSON_GetObjectItem(j, "sites");
    CHECK(cJSON_GetArraySize(sites) == 3, "three sites");
    /* By time: H100 (45m + 17s) < A100 (1h55m + 2m52s) < CPU (14 days). */
    if (cJSON_GetArraySize(sites) == 3) {
        check_row(cJSON_GetArrayItem(sites, 0), &h100, 1);
        check_row(cJSON_GetArrayItem(sites, 1), &a100, 2);
        check_row(cJSON_GetArrayItem(sites, 2), &cpu, 3);
    }
    CHECK(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(sites, 2), "throughput_source")->valuestring, "site entry") != NULL,
          "the CPU figure says where it came from");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(sites, 0), "policy"), "allowed")), "no policy");
    cJSON_Delete(j);
    /* By cost: A100 (8 x 0.50 x 1.91 h = 7.66) < H100 (8 x 2.50 x 0.754 h = 15.09) < CPU (694.44). */
    j = plan_json("--by cost", &rc);
    CHECK(rc == 0 && j, "exit %d", rc);
    if (!j) return;
    sites = cJSON_GetObjectItem(j, "sites");
    if (cJSON_GetArraySize(sites) == 3) {
        check_row(cJSON_GetArrayItem(sites, 0), &a100, 1);
        check_row(cJSON_GetArrayItem(sites, 1), &h100, 2);
        check_row(cJSON_GetArrayItem(sites, 2), &cpu, 3);
    }
    cJSON_Delete(j);
}

static void test_policy_in_the_plan(void) {
    hand_row cpu, h100, a100;
    hand_rows(&cpu, &h100, &a100);
    int rc;
    /* Restricted data may stay only in DE/FR: the home site ranks first, the others are refused. */
    cJSON *j = plan_json("--policy " FX "policy.json --data-class restricted", &rc);
    CHECK(rc == 0 && j, "exit %d", rc);
    if (!j) return;
    const cJSON *sites = cJSON_GetObjectItem(j, "sites");
    if (cJSON_GetArraySize(sites) == 3) {
        check_row(cJSON_GetArrayItem(sites, 0), &cpu, 1);
        check_row(cJSON_GetArrayItem(sites, 1), &h100, 2);
        check_row(cJSON_GetArrayItem(sites, 2), &a100, 3);
        const cJSON *p0 = cJSON_GetObjectItem(cJSON_GetArrayItem(sites, 0), "policy");
        const cJSON *p1 = cJSON_GetObjectItem(cJSON_GetArrayItem(sites, 1), "policy");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(p0, "allowed")), "home allowed");
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(p1, "allowed")) &&
                  !strcmp(cJSON_GetObjectItem(p1, "rule")->valuestring, "restricted-stays-home") &&
                  !strcmp(cJSON_GetObjectItem(p1, "reason")->valuestring,
                          "data of class \"restricted\" may be processed only in DE, FR; site \"us-h100\" (" FX
                          "plan_sites.json: sites[1]) is in US"),
              "refusal: %s", cJSON_PrintUnformatted(p1));
    }
    cJSON_Delete(j);
    /* Public data, sealed: all three allowed, ranked by time as without a policy. */
    j = plan_json("--policy " FX "policy.json --data-class public --sealed", &rc);
    CHECK(rc == 0 && j, "exit %d", rc);
    if (!j) return;
    sites = cJSON_GetObjectItem(j, "sites");
    const cJSON *s;
    int allowed = 0;
    cJSON_ArrayForEach(s, sites) allowed += cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "policy"), "allowed"));
    CHECK(allowed == 3, "%d allowed", allowed);
    if (cJSON_GetArraySize(sites) == 3) check_row(cJSON_GetArrayItem(sites, 0), &h100, 1);
    cJSON_Delete(j);
}

static void test_cpu_benchmark(void) {
    /* "tokens_per_s": "measure" times tern's own sgemm kernel here; the figure must be positive, say so, and
     * convert FLOP/s to tokens/s through the same FLOPs per token. */
    const char *dir = test_tmpdir("plan_measure");
    char sites[600];
    snprintf(sites, sizeof sites, "%s/sites.json", dir);
    const char *text = "{\"sites\": [{\"site\": \"here\", \"operator\": \"me\", \"country\": \"DE\", \"hardware\": "
                       "[{\"accelerator\": \"cpu\", \"tpp\": 6}], \"tokens_per_s\": \"measure\", "
                       "\"price_per_device_hour\": 0, \"at_home\": true}]}";
    CHECK(tern_write_file_atomic(sites, text, strlen(text)) == TERN_OK, "%s", tern_errmsg());
    tern_plan p;
    tern_plan_opts o = {.sites_path = sites, .config_path = FX "plan_config.json", .tokens = 8192};
    CHECK(tern_plan_run(&p, &o) == TERN_OK, "%s", tern_errmsg());
    if (p.nrows == 1) {
        const tern_plan_row *r = &p.rows[0];
        double gflops = 0;
        const char *g = strstr(r->throughput_source, "sgemm 512x768x3072, ");
        CHECK(g && sscanf(g + strlen("sgemm 512x768x3072, "), "%lf GFLOP/s", &gflops) == 1, "%s", r->throughput_source);
        CHECK(gflops > 0.1 && fabs(r->tokens_per_s - gflops * 1e9 / HAND_F) <= 0.001 * r->tokens_per_s + 1,
              "tokens/s %g from %g GFLOP/s", r->tokens_per_s, gflops);
        CHECK(strstr(r->throughput_source, "measured here") != NULL, "says it was measured");
        CHECK(r->steps == 1 && r->cost == 0, "one step, free");
    }
    tern_plan_free(&p);
}

static void test_bad_input(void) {
    char out[4096];
    int rc = run_cmd(out, sizeof out, "%s plan --sites " FX "plan_sites.json --config " FX "plan_config.json",
                     test_tern_bin());
    CHECK(rc == 2 && !strcmp(out, "tern plan: --tokens N is required\n"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s plan --sites " FX "plan_sites.json --config " FX "plan_config.json --tokens 1.5",
                 test_tern_bin());
    CHECK(rc == 2 && !strcmp(out, "tern plan: --tokens needs a whole number from 1 to 1e18, got '1.5'\n"), "rc %d: %s",
          rc, out);
    rc = run_cmd(out, sizeof out, "%s plan --sites " FX "policy.json --config " FX "plan_config.json --tokens 10",
                 test_tern_bin());
    CHECK(rc == 1 && !strcmp(out, "tern plan: " FX "policy.json: unknown field \"policy\" (expected: sites, data_bytes, "
                                  "checkpoint_transfers, note)\n"),
          "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s plan --sites " FX "plan_sites.json --config " FX "site_sg.json --tokens 10",
                 test_tern_bin());
    CHECK(rc == 1 && !strcmp(out, "tern plan: " FX "site_sg.json: missing field \"n_layer\"\n"), "rc %d: %s", rc, out);

    const char *dir = test_tmpdir("plan_bad");
    struct {
        const char *sites, *msg;
    } t[] = {
        {"{\"sites\": [{\"site\": \"a\", \"operator\": \"b\", \"country\": \"DE\", \"accelerator\": \"cpu\", "
         "\"count\": 1, \"price_per_device_hour\": 1, \"at_home\": true}]}",
         "S: site \"a\": a CPU site needs \"tokens_per_s\": tokens/s measured per host, or \"measure\" to benchmark "
         "this machine"},
        {"{\"sites\": [{\"site\": \"a\", \"operator\": \"b\", \"country\": \"DE\", \"accelerator\": \"A100\", "
         "\"count\": 1, \"at_home\": true}]}",
         "S: site \"a\": missing field \"price_per_device_hour\""},
        {"{\"sites\": [{\"site\": \"a\", \"operator\": \"b\", \"country\": \"DE\", \"accelerator\": \"A100\", "
         "\"count\": 1, \"price_per_device_hour\": 1}]}",
         "S: site \"a\": missing field \"bandwidth_to_home_gbps\" (or \"at_home\": true)"},
        {"{\"sites\": [{\"site\": \"a\", \"operator\": \"b\", \"country\": \"DE\", \"accelerator\": \"A100\", "
         "\"count\": 1, \"price_per_device_hour\": 1, \"at_home\": true, \"precision\": \"fp8\"}]}",
         "S: site \"a\": A100 has no dense fp8 figure; choose another \"precision\""},
        {"{\"sites\": [{\"site\": \"a\", \"operator\": \"b\", \"country\": \"DE\", \"accelerator\": \"A100\", "
         "\"count\": 1, \"price_per_device_hour\": 1, \"at_home\": true, \"utilisation\": 1.5}]}",
         "S: sites[0]: \"utilisation\" must be in (0, 1], got 1.5"},
        {"{\"sites\": []}", "S: \"sites\" must be a non-empty array"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char path[600], want[1200];
        snprintf(path, sizeof path, "%s/s%zu.json", dir, i);
        CHECK(tern_write_file_atomic(path, t[i].sites, strlen(t[i].sites)) == TERN_OK, "%s", tern_errmsg());
        snprintf(want, sizeof want, "%s%s", path, t[i].msg + 1);
        tern_plan p;
        tern_plan_opts o = {.sites_path = path, .config_path = FX "plan_config.json", .tokens = 100};
        tern_status st = tern_plan_run(&p, &o);
        CHECK(st == TERN_EFORMAT && !strcmp(tern_errmsg(), want), "case %zu: %d %s", i, st, tern_errmsg());
    }
}

int main(void) {
    RUN(test_hand_computation);
    RUN(test_policy_in_the_plan);
    RUN(test_cpu_benchmark);
    RUN(test_bad_input);
    return check_exit();
}
