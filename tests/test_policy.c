/* Tests of the policy gate and site declarations (policy/policy.c): the fixture policy under
 * tests/fixtures/policy/ refuses restricted data outside its home countries and allows it at
 * home; hardware-class and sealing rules; exact messages for every kind of bad file; and, once
 * the trainer exists, that `tern train` refuses before it opens any data file (checked with strace). */
#include <cjson/cJSON.h>

#include "check.h"
#include "tern.h"

#define FX "tests/fixtures/policy/"

static tern_status check(const char *site, const char *cls, int sealed) {
    return tern_policy_check(FX "policy.json", site ? site : NULL, cls, sealed);
}

static void test_restricted_outside_home_refused(void) {
    tern_status st = check(FX "site_sg.json", "restricted", 1);
    CHECK(st == TERN_EPOLICY, "status %d", st);
    CHECK(!strcmp(tern_errmsg(), FX "policy.json: rule \"restricted-stays-home\" (data_residency) forbids this run: "
                                    "data of class \"restricted\" may be processed only in DE, FR; site \"cloud-sg\" "
                                    "(" FX "site_sg.json) is in SG"),
          "%s", tern_errmsg());
}

static void test_restricted_at_home_allowed(void) {
    CHECK(check(FX "site_home.json", "restricted", 0) == TERN_OK, "home, unsealed: %s", tern_errmsg());
    CHECK(check(FX "site_home.json", "restricted", 1) == TERN_OK, "home, sealed: %s", tern_errmsg());
    CHECK(check(FX "site_home.json", NULL, 0) == TERN_OK, "home, unclassified: %s", tern_errmsg());
    /* No policy: allowed, whatever the site. */
    CHECK(tern_policy_check(NULL, FX "site_sg.json", "restricted", 0) == TERN_OK, "no policy");
    CHECK(tern_policy_check(NULL, NULL, NULL, 0) == TERN_OK, "nothing given");
}

static void test_sealing_and_hardware_rules(void) {
    tern_status st = check(FX "site_sg.json", "public", 0);
    CHECK(st == TERN_EPOLICY && !strcmp(tern_errmsg(), FX "policy.json: rule \"seal-abroad\" (sealing) forbids this "
                                                          "run: runs on data of class \"public\" outside DE, FR must "
                                                          "seal their files (give --key); site \"cloud-sg\" (" FX
                                                          "site_sg.json) is in SG"),
          "%s", tern_errmsg());
    CHECK(check(FX "site_sg.json", "public", 1) == TERN_OK, "sealed abroad: %s", tern_errmsg());
    st = check(FX "site_cn_h100.json", "public", 1);
    CHECK(st == TERN_EPOLICY &&
              !strcmp(tern_errmsg(), FX "policy.json: rule \"no-3A090a-in-CN\" (hardware_class) forbids this run: in "
                                        "CN only hardware of class not 3A090, 3A090.b is allowed; site \"cloud-cn\" (" FX
                                        "site_cn_h100.json) has H100 SXM x 8, class 3A090.a (3A090.a.1: TPP 15832.0 >= "
                                        "4800)"),
          "%s", tern_errmsg());
    CHECK(check(FX "site_cn_h20.json", "public", 1) == TERN_OK, "H20 in CN: %s", tern_errmsg());
    /* Unclassified data is covered by "*" rules. */
    CHECK(check(FX "site_sg.json", NULL, 0) == TERN_EPOLICY && strstr(tern_errmsg(), "data of no class (unclassified)"),
          "%s", tern_errmsg());
}

static void test_no_site(void) {
    tern_status st = check(NULL, "restricted", 1);
    CHECK(st == TERN_EPOLICY && !strcmp(tern_errmsg(), FX "policy.json: rule \"restricted-stays-home\" "
                                                          "(data_residency) forbids this run: the rule covers data of "
                                                          "class \"restricted\" and needs to know where the run goes; "
                                                          "give --site FILE"),
          "%s", tern_errmsg());
}

static tern_status pol_buf(const char *text) {
    tern_policy *p = NULL;
    tern_status st = tern_policy_from_buffer(&p, text, strlen(text), "p.json");
    tern_policy_free(p);
    return st;
}

#define BAD_POLICY(text, msg)                                                                                        \
    do {                                                                                                             \
        tern_status st_ = pol_buf(text);                                                                             \
        CHECK(st_ == TERN_EFORMAT && !strcmp(tern_errmsg(), msg), "status %d: %s", st_, tern_errmsg());              \
    } while (0)

static void test_bad_policies(void) {
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [", "p.json: not valid JSON (syntax error near byte 25)");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": []} x", "p.json: unexpected text after the JSON value at byte 29");
    BAD_POLICY("[]", "p.json: a policy must be a JSON object");
    BAD_POLICY("{\"rules\": []}", "p.json: missing field \"policy\"");
    BAD_POLICY("{\"policy\": \"x\"}", "p.json: missing field \"rules\"");
    BAD_POLICY("{\"policy\": \"x\", \"rule\": []}",
               "p.json: unknown field \"rule\" (expected: policy, description, country_sets, rules)");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"residency\"}]}",
               "p.json: rules[0]: rule \"a\" has unknown type \"residency\" (expected data_residency, hardware_class "
               "or sealing)");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"data_residency\", \"data_classes\": "
               "[\"r\"], \"countries\": [\"de\"]}]}",
               "p.json: rules[0]: rule \"a\": \"countries\" holds \"de\", not an ISO 3166-1 alpha-2 code");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"data_residency\", \"data_classes\": "
               "[\"r\"], \"countries\": [\"XX\"]}]}",
               "p.json: rules[0]: rule \"a\": \"countries\" holds \"XX\", not an ISO 3166-1 alpha-2 code");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"data_residency\", \"data_classes\": "
               "[\"r\"], \"countries\": [\"@eu\"]}]}",
               "p.json: rules[0]: rule \"a\": \"countries\" names country set \"eu\", which \"country_sets\" does not "
               "define");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"data_residency\", \"data_classes\": "
               "[\"r\"], \"countries\": [\"*\"]}]}",
               "p.json: rules[0]: rule \"a\": \"*\" is not allowed in \"countries\"");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"data_residency\", \"data_classes\": "
               "[\"r\"], \"countries\": [\"DE\"], \"contries\": []}]}",
               "p.json: rules[0]: rule \"a\": unknown field \"contries\" (expected: id, type, description, "
               "data_classes, countries)");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"hardware_class\", \"countries\": "
               "[\"CN\"], \"allowed_classes\": [\"3A090.c\"]}]}",
               "p.json: rules[0]: rule \"a\": \"allowed_classes\" entries must be \"not 3A090\", \"3A090.b\", "
               "\"3A090.a\" or \"undetermined\"");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"sealing\"}, {\"id\": \"a\", \"type\": "
               "\"sealing\"}]}",
               "p.json: rule id \"a\" is used twice");
    BAD_POLICY("{\"policy\": \"x\", \"country_sets\": {\"eu\": [\"DE\", \"EU\"]}, \"rules\": []}",
               "p.json: country set \"eu\" must be a non-empty array of ISO 3166-1 alpha-2 codes");
    BAD_POLICY("{\"policy\": \"x\", \"rules\": [{\"id\": \"a\", \"type\": \"data_residency\", \"data_classes\": "
               "[\"a b\"], \"countries\": [\"DE\"]}]}",
               "p.json: rules[0]: rule \"a\": \"data_classes\" entries must be names of letters, digits, '_', '-', "
               "'.' (or \"*\")");
    CHECK(pol_buf("{\"policy\": \"empty\", \"rules\": []}") == TERN_OK, "an empty policy is valid");
    tern_status st = tern_policy_check("/nonexistent/policy.json", FX "site_home.json", NULL, 0);
    CHECK(st == TERN_ENOTFOUND && !strcmp(tern_errmsg(), "/nonexistent/policy.json: cannot open: No such file or directory"),
          "%s", tern_errmsg());
}

static tern_status site_buf(const char *text) {
    tern_site s;
    tern_status st = tern_site_from_buffer(&s, text, strlen(text), "s.json");
    tern_site_free(&s);
    return st;
}

#define BAD_SITE(text, msg)                                                                                          \
    do {                                                                                                             \
        tern_status st_ = site_buf(text);                                                                            \
        CHECK(st_ == TERN_EFORMAT && !strcmp(tern_errmsg(), msg), "status %d: %s", st_, tern_errmsg());              \
    } while (0)

static void test_sites(void) {
    tern_site s;
    CHECK(tern_site_load(&s, FX "site_sg.json") == TERN_OK, "%s", tern_errmsg());
    CHECK(!strcmp(s.name, "cloud-sg") && !strcmp(s.country, "SG") && s.nhw == 1 && s.hw[0].count == 8 &&
              s.hw[0].cls.cls == TERN_3A090_A,
          "fields");
    tern_site_free(&s);
    CHECK(tern_site_load(&s, FX "site_home.json") == TERN_OK, "%s", tern_errmsg());
    CHECK(s.hw[0].kind == TERN_HW_CPU && s.hw[0].cls.tpp == 6.5 && s.hw[0].cls.tpp_declared &&
              s.hw[0].cls.cls == TERN_3A090_NOT,
          "declared CPU TPP");
    tern_site_free(&s);
    tern_site_free(NULL);
    BAD_SITE("{\"site\": \"a\", \"operator\": \"b\", \"country\": \"UK\", \"accelerator\": \"A100\"}",
             "s.json: \"country\" is \"UK\", not an ISO 3166-1 alpha-2 code (two upper-case letters, such as \"DE\")");
    BAD_SITE("{\"site\": \"a\", \"operator\": \"b\", \"country\": \"GB\", \"accelerator\": \"A200\"}",
             "s.json: unknown accelerator \"A200\" (expected a name from `tern hw --known`, \"cpu\", \"custom\" or "
             "\"this-host\")");
    BAD_SITE("{\"site\": \"a\", \"operator\": \"b\", \"country\": \"GB\"}", "s.json: missing field \"hardware\"");
    BAD_SITE("{\"site\": \"a\", \"operator\": \"b\", \"country\": \"GB\", \"hardware\": [{\"accelerator\": "
             "\"custom\"}]}",
             "s.json: hardware[0]: a \"custom\" accelerator needs \"dense_tops\" or \"tpp\"");
    BAD_SITE("{\"site\": \"a\", \"operator\": \"b\", \"country\": \"GB\", \"hardware\": [{\"accelerator\": "
             "\"A100\", \"tpp\": 1}]}",
             "s.json: hardware[0]: \"A100\" is in tern's table; its figures come from there (use \"accelerator\": "
             "\"custom\" to declare your own)");
    BAD_SITE("{\"site\": \"a\", \"operator\": \"b\", \"country\": \"GB\", \"accelerator\": \"A100\", \"count\": 0}",
             "s.json: field \"count\" must be a whole number from 1 to 1000000");
    BAD_SITE("{\"site\": \"a\", \"operator\": \"b\", \"country\": \"GB\", \"hardware\": [{\"accelerator\": "
             "\"custom\", \"dense_tops\": {\"bf17\": 3}}]}",
             "s.json: hardware[0]: \"dense_tops\" has unknown precision \"bf17\" (expected fp64, fp32, tf32, bf16, "
             "fp16, fp8, int8, fp4 or int4)");
    /* A custom part from per-precision figures: 200 TFLOPS bf16 on 400 mm^2 -> TPP 3200, PD 8: a.2. */
    const char *custom = "{\"site\": \"a\", \"operator\": \"b\", \"country\": \"GB\", \"hardware\": [{\"accelerator\": "
                         "\"custom\", \"name\": \"X1\", \"dense_tops\": {\"bf16\": 200}, \"die_area_mm2\": 400, "
                         "\"datacenter\": true}]}";
    CHECK(tern_site_from_buffer(&s, custom, strlen(custom), "s.json") == TERN_OK, "%s", tern_errmsg());
    CHECK(s.hw[0].cls.tpp == 3200 && s.hw[0].cls.cls == TERN_3A090_A && !strcmp(s.hw[0].cls.paragraph, "3A090.a.2"),
          "custom: %s", s.hw[0].cls.reason);
    tern_site_free(&s);
    /* this-host: the probe's devices, classified. */
    const char *host = "{\"site\": \"here\", \"operator\": \"me\", \"country\": \"DE\", \"hardware\": "
                       "[{\"accelerator\": \"this-host\"}]}";
    CHECK(tern_site_from_buffer(&s, host, strlen(host), "s.json") == TERN_OK, "%s", tern_errmsg());
    CHECK(s.nhw >= 1 && s.hw[0].kind == TERN_HW_CPU && s.hw[0].cls.cls == TERN_3A090_NOT, "this host's CPU");
    tern_site_free(&s);
    CHECK(tern_country_valid("DE") && tern_country_valid("TW") && tern_country_valid("MO") && tern_country_valid("AD") &&
              tern_country_valid("ZW") && !tern_country_valid("ZZ") &&
              !tern_country_valid("EU") && !tern_country_valid("de") && !tern_country_valid("DEU"),
          "ISO 3166-1 alpha-2");
}

/* The contract with the trainer: `tern train` evaluates the policy before it opens any data. */
static int trainer_exists(void) {
    char out[4096];
    int rc = run_cmd(out, sizeof out, "%s train --help", test_tern_bin());
    return !(rc == 2 && strstr(out, "unknown command 'train'"));
}

static void test_train_refuses_before_reading_data(void) {
    const char *dir = test_tmpdir("policy_train");
    char data[600], run[600], log[600], shard[700], cmd[4096];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(log, sizeof log, "%s/strace.log", dir);
    /* LeakSanitizer cannot run under ptrace; in a sanitizer build it would add a fatal notice to
     * the output, so the traced process runs with leak detection off. */
    snprintf(shard, sizeof shard, "%s/train_000000.bin", data);
    CHECK(tern_mkdir_p(data) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_write_file_atomic(shard, "not really a shard", 18) == TERN_OK, "%s", tern_errmsg());
    char out[8192];
    snprintf(cmd, sizeof cmd,
             "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 strace -f -e trace=open,openat -o '%s' %s train --policy " FX "policy.json --site " FX "site_sg.json "
             "--data-class restricted --data '%s' -o '%s'",
             log, test_tern_bin(), data, run);
    int rc = run_cmd(out, sizeof out, "%s", cmd);
    CHECK(rc == 1, "exit %d: %s", rc, out);
    CHECK(!strcmp(out, "tern train: " FX "policy.json: rule \"restricted-stays-home\" (data_residency) forbids this "
                       "run: data of class \"restricted\" may be processed only in DE, FR; site \"cloud-sg\" (" FX
                       "site_sg.json) is in SG\n"),
          "message: %s", out);
    char *trace = NULL;
    size_t n = 0;
    CHECK(tern_read_file(log, &trace, &n) == TERN_OK, "strace log: %s", tern_errmsg());
    if (!trace) return;
    /* The trace is real: it shows the policy being read ... */
    CHECK(strstr(trace, "\"" FX "policy.json\"") != NULL, "trace shows the policy read");
    /* ... and nothing under the data folder, not even the folder itself. */
    CHECK(strstr(trace, data) == NULL, "an open under %s: %s", data, strstr(trace, data));
    free(trace);
}

int main(void) {
    RUN(test_restricted_outside_home_refused);
    RUN(test_restricted_at_home_allowed);
    RUN(test_sealing_and_hardware_rules);
    RUN(test_no_site);
    RUN(test_bad_policies);
    RUN(test_sites);
    if (trainer_exists()) {
        RUN(test_train_refuses_before_reading_data);
    } else {
        /* Not a pass: the runner counts neither PASS nor FAIL for it, and shows this line. */
        printf("  SKIP test_train_refuses_before_reading_data: `tern train` is not built yet; the test runs once it "
               "is\n");
    }
    return check_exit();
}
