/* libFuzzer target: a site declaration (tern train --site, one entry of tern plan's SITES.json)
 * through tern_site_from_buffer, then judged by a fixed policy. Not the hardware probe: a site
 * naming "this-host" measures this machine instead of reading the input, so such inputs are
 * skipped. Format: docs/COMPLIANCE.md "Site files". */
#include "fuzz.h"

static const char *label = "fuzz/site.json";
static const char policy_json[] =
    "{\"policy\": \"fuzz\", \"country_sets\": {\"home\": [\"DE\", \"FR\"]}, \"rules\": ["
    "{\"id\": \"stay\", \"type\": \"data_residency\", \"data_classes\": [\"restricted\"], \"countries\": [\"@home\"]},"
    "{\"id\": \"hw\", \"type\": \"hardware_class\", \"countries\": [\"CN\"], \"allowed_classes\": [\"not 3A090\", \"3A090.b\"]},"
    "{\"id\": \"seal\", \"type\": \"sealing\", \"data_classes\": [\"*\"], \"except_countries\": [\"@home\"]}]}";
static tern_policy *pol;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!pol) FUZZ_REQUIRE(tern_policy_from_buffer(&pol, policy_json, strlen(policy_json), "policy") == TERN_OK, "%s", tern_errmsg());
    if (memmem(data, size, "this-host", 9)) return 0;
    tern_site s;
    tern_err_clear();
    tern_status st = tern_site_from_buffer(&s, (const char *)data, size, label);
    fuzz_check_refusal(st, label);
    if (st != TERN_OK) return 0;
    FUZZ_REQUIRE(s.nhw >= 1 && s.nhw <= 64 && s.hw, "%zu hardware entries", s.nhw);
    FUZZ_REQUIRE(tern_country_valid(s.country), "accepted country '%s'", s.country);
    for (size_t i = 0; i < s.nhw; i++) FUZZ_REQUIRE(s.hw[i].count >= 1, "count %ld", s.hw[i].count);
    for (int sealed = 0; sealed < 2; sealed++) {
        tern_policy_verdict v;
        FUZZ_REQUIRE(tern_policy_eval(pol, &s, "restricted", sealed, &v) == TERN_OK, "eval: %s", tern_errmsg());
    }
    tern_site_free(&s);
    return 0;
}
