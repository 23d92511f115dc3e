/* libFuzzer target: the owner's policy file (tern train --policy, tern plan --policy) through
 * tern_policy_from_buffer, then evaluated against fixed sites and data classes as the trainer
 * and the planner do. Not the site parser (fuzz_site.c). Every verdict that forbids must name
 * its rule and say why. Format: docs/COMPLIANCE.md "Policy files". */
#include "fuzz.h"

static const char *label = "fuzz/policy.json";
static const char *const sites_json[] = {
    "{\"site\": \"home\", \"operator\": \"Lab\", \"country\": \"DE\", \"hardware\": [{\"accelerator\": \"cpu\"}]}",
    "{\"site\": \"cn-h20\", \"operator\": \"Cloud\", \"country\": \"CN\", \"accelerator\": \"H20\", \"count\": 8}",
    "{\"site\": \"us-h100\", \"operator\": \"Cloud\", \"country\": \"US\", \"accelerator\": \"H100 SXM\", \"count\": 8}",
};
#define N_SITES (sizeof sites_json / sizeof sites_json[0])
static tern_site sites[N_SITES];

static void setup(void) {
    static int done;
    if (done) return;
    for (size_t i = 0; i < N_SITES; i++)
        FUZZ_REQUIRE(tern_site_from_buffer(&sites[i], sites_json[i], strlen(sites_json[i]), "site") == TERN_OK, "site %zu: %s", i,
                     tern_errmsg());
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    tern_policy *pol = NULL;
    tern_err_clear();
    tern_status st = tern_policy_from_buffer(&pol, (const char *)data, size, label);
    fuzz_check_refusal(st, label);
    if (st != TERN_OK) {
        FUZZ_REQUIRE(pol == NULL, "a refused policy still returned a handle");
        return 0;
    }
    static const char *const classes[] = {NULL, "restricted", "public", "x"};
    for (size_t i = 0; i <= N_SITES; i++)
        for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++)
            for (int sealed = 0; sealed < 2; sealed++) {
                tern_policy_verdict v;
                tern_err_clear();
                st = tern_policy_eval(pol, i < N_SITES ? &sites[i] : NULL, classes[c], sealed, &v);
                FUZZ_REQUIRE(st == TERN_OK, "eval: %s", tern_errmsg());
                FUZZ_REQUIRE(v.allowed == 0 || v.allowed == 1, "allowed %d", v.allowed);
                if (!v.allowed)
                    FUZZ_REQUIRE(v.rule_type[0] && v.reason[0] && memchr(v.reason, 0, sizeof v.reason), "a refusal without its rule or reason");
            }
    tern_policy_free(pol);
    return 0;
}
