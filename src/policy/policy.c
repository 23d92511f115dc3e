/* Site declarations and the owner's policy gate: where a run would go (country, operator,
 * hardware and its 3A090 class) and whether the owner's own rules allow it there. It applies the
 * owner's rules as written; it does not know the law and is not legal advice. The file formats
 * are specified in docs/COMPLIANCE.md ("Site and policy files"); country codes are ISO 3166-1
 * alpha-2. It reads only the site and policy files: never a data file. */
#include "tern/json.h"
#include "tern/policy.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- countries ---- */

/* The 249 officially assigned ISO 3166-1 alpha-2 codes (checked against the pycountry package's
 * copy of the ISO 3166 list). */
static const char iso3166[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW "
    "BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI "
    "FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN "
    "IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME "
    "MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF "
    "PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE "
    "YT ZA ZM ZW";

int tern_country_valid(const char *cc) {
    if (!cc || strlen(cc) != 2 || !isupper((unsigned char)cc[0]) || !isupper((unsigned char)cc[1])) return 0;
    for (const char *p = iso3166; p[0] && p[1]; p += p[2] ? 3 : 2)
        if (p[0] == cc[0] && p[1] == cc[1]) return 1;
    return 0;
}

/* ---- site declarations ---- */

void tern_site_free(tern_site *s) {
    if (!s) return;
    free(s->path);
    free(s->hw);
    memset(s, 0, sizeof *s);
}

static tern_status site_add_hw(tern_site *s, const tern_site_hw *h, const char *what) {
    if (s->nhw >= 64) return tern_err(TERN_EFORMAT, "%s: more than 64 hardware entries", what);
    tern_site_hw *n = realloc(s->hw, (s->nhw + 1) * sizeof *n);
    if (!n) return tern_err(TERN_ENOMEM, "out of memory reading %s", what);
    s->hw = n;
    s->hw[s->nhw++] = *h;
    return TERN_OK;
}

/* dense_tops: {"bf16": 989.5, ...} */
static tern_status parse_tops(const cJSON *o, double tops[TERN_PREC_COUNT], const char *what) {
    if (!cJSON_IsObject(o)) return tern_err(TERN_EFORMAT, "%s: \"dense_tops\" must be an object such as {\"bf16\": 312}", what);
    int any = 0;
    for (const cJSON *c = o->child; c; c = c->next) {
        tern_prec p;
        if (tern_prec_from_name(c->string, &p) != 0)
            return tern_err(TERN_EFORMAT,
                            "%s: \"dense_tops\" has unknown precision \"%s\" (expected fp64, fp32, tf32, bf16, fp16, "
                            "fp8, int8, fp4 or int4)",
                            what, c->string ? c->string : "");
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || c->valuedouble <= 0)
            return tern_err(TERN_EFORMAT, "%s: \"dense_tops\".\"%s\" must be a positive number (tera-ops/s)", what,
                            c->string);
        tops[p] = c->valuedouble;
        any = 1;
    }
    if (!any) return tern_err(TERN_EFORMAT, "%s: \"dense_tops\" is empty", what);
    return TERN_OK;
}

static tern_status parse_hw_entry(tern_site *s, const cJSON *e, const char *what) {
    static const char *const keys[] = {"accelerator", "count", "name", "tpp", "dense_tops", "die_area_mm2",
                                       "datacenter", NULL};
    if (!cJSON_IsObject(e)) return tern_err(TERN_EFORMAT, "%s: a hardware entry must be an object", what);
    TERN_TRY(tern_json_check_keys(e, keys, what));
    tern_site_hw h;
    memset(&h, 0, sizeof h);
    h.count = 1;
    TERN_TRY(tern_json_string(e, "accelerator", 1, h.accelerator, sizeof h.accelerator, what));
    TERN_TRY(tern_json_long(e, "count", 0, 1, 1000000, &h.count, what));
    TERN_TRY(tern_json_string(e, "name", 0, h.name, sizeof h.name, what));
    int has_tpp = cJSON_HasObjectItem(e, "tpp"), has_tops = cJSON_HasObjectItem(e, "dense_tops");
    int has_area = cJSON_HasObjectItem(e, "die_area_mm2"), has_dc = cJSON_HasObjectItem(e, "datacenter");
    const tern_hw_known *k = tern_hw_known_find(h.accelerator);
    if (!strcmp(h.accelerator, "this-host")) {
        if (has_tpp || has_tops || has_area || has_dc || cJSON_HasObjectItem(e, "count") || h.name[0])
            return tern_err(TERN_EFORMAT, "%s: \"this-host\" takes its figures from this machine; give no other field",
                            what);
        tern_hw_host *host = malloc(sizeof *host);
        if (!host) return tern_err(TERN_ENOMEM, "out of memory probing this machine for %s", what);
        tern_status st = tern_hw_probe(host);
        for (int i = 0; st == TERN_OK && i < host->ndev; i++) {
            tern_site_hw d;
            memset(&d, 0, sizeof d);
            snprintf(d.accelerator, sizeof d.accelerator, "this-host");
            snprintf(d.name, sizeof d.name, "%s", host->dev[i].name);
            d.count = 1;
            d.kind = host->dev[i].kind;
            memcpy(d.dense_tops, host->dev[i].dense_tops, sizeof d.dense_tops);
            d.cls = host->dev[i].cls;
            st = site_add_hw(s, &d, what);
        }
        free(host);
        return st;
    }
    if (k) {
        if (has_tpp || has_tops || has_area || has_dc)
            return tern_err(TERN_EFORMAT,
                            "%s: \"%s\" is in tern's table; its figures come from there (use \"accelerator\": "
                            "\"custom\" to declare your own)",
                            what, h.accelerator);
        snprintf(h.accelerator, sizeof h.accelerator, "%s", k->name);
        if (!h.name[0]) snprintf(h.name, sizeof h.name, "%s", k->name);
        h.kind = TERN_HW_GPU;
        memcpy(h.dense_tops, k->dense_tops, sizeof h.dense_tops);
        tern_hw_classify(&h.cls, h.dense_tops, k->die_area_mm2, k->datacenter);
        return site_add_hw(s, &h, what);
    }
    if (strcmp(h.accelerator, "cpu") && strcmp(h.accelerator, "custom"))
        return tern_err(TERN_EFORMAT,
                        "%s: unknown accelerator \"%s\" (expected a name from `tern hw --known`, \"cpu\", \"custom\" "
                        "or \"this-host\")",
                        what, h.accelerator);
    h.kind = strcmp(h.accelerator, "cpu") ? TERN_HW_GPU : TERN_HW_CPU;
    if (!h.name[0]) snprintf(h.name, sizeof h.name, "%s", h.accelerator);
    if (has_tpp && has_tops) return tern_err(TERN_EFORMAT, "%s: give \"tpp\" or \"dense_tops\", not both", what);
    if (!has_tpp && !has_tops && h.kind == TERN_HW_GPU)
        return tern_err(TERN_EFORMAT, "%s: a \"custom\" accelerator needs \"dense_tops\" or \"tpp\"", what);
    double area = 0;
    if (has_area) {
        TERN_TRY(tern_json_number(e, "die_area_mm2", 1, &area, what));
        if (area <= 0) return tern_err(TERN_EFORMAT, "%s: \"die_area_mm2\" must be positive", what);
    }
    int dc = -1;
    if (has_dc) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "datacenter");
        if (!cJSON_IsBool(v)) return tern_err(TERN_EFORMAT, "%s: \"datacenter\" must be true or false", what);
        dc = cJSON_IsTrue(v);
    }
    if (has_tops) {
        TERN_TRY(parse_tops(cJSON_GetObjectItemCaseSensitive(e, "dense_tops"), h.dense_tops, what));
        tern_hw_classify(&h.cls, h.dense_tops, area, dc);
    } else if (has_tpp) {
        double tpp = 0;
        TERN_TRY(tern_json_number(e, "tpp", 1, &tpp, what));
        if (tpp <= 0) return tern_err(TERN_EFORMAT, "%s: \"tpp\" must be positive", what);
        tern_hw_classify_tpp(&h.cls, tpp, TERN_PREC_FP32, area, dc);
        h.cls.tpp_declared = 1;
    } else {
        tern_hw_classify_tpp(&h.cls, NAN, TERN_PREC_FP32, area, dc);
        snprintf(h.cls.reason, sizeof h.cls.reason,
                 "the site file gives no \"tpp\" or \"dense_tops\" for this CPU, so its class is unknown");
    }
    return site_add_hw(s, &h, what);
}

/* The site's hardware: a "hardware" array of entries, or the shorthand "accelerator" with
 * "count" for one kind. */
static tern_status site_hardware(tern_site *s, const cJSON *obj, const char *what) {
    const cJSON *hw = cJSON_GetObjectItemCaseSensitive(obj, "hardware");
    int shorthand = cJSON_HasObjectItem(obj, "accelerator");
    if (hw && shorthand) return tern_err(TERN_EFORMAT, "%s: give \"hardware\" or \"accelerator\" with \"count\", not both", what);
    if (cJSON_HasObjectItem(obj, "count") && !shorthand) return tern_err(TERN_EFORMAT, "%s: \"count\" belongs with \"accelerator\"", what);
    if (shorthand) {
        cJSON *e = cJSON_CreateObject();
        if (!e) return tern_err(TERN_ENOMEM, "out of memory reading %s", what);
        cJSON_AddItemReferenceToObject(e, "accelerator", cJSON_GetObjectItemCaseSensitive(obj, "accelerator"));
        if (cJSON_HasObjectItem(obj, "count")) cJSON_AddItemReferenceToObject(e, "count", cJSON_GetObjectItemCaseSensitive(obj, "count"));
        tern_status st = parse_hw_entry(s, e, what);
        cJSON_Delete(e);
        return st;
    }
    if (!hw) return tern_err(TERN_EFORMAT, "%s: missing field \"hardware\"", what);
    if (!cJSON_IsArray(hw) || cJSON_GetArraySize(hw) == 0) return tern_err(TERN_EFORMAT, "%s: \"hardware\" must be a non-empty array", what);
    int i = 0;
    for (const cJSON *e = hw->child; e; e = e->next, i++) {
        char w[600];
        tern_fmt(w, sizeof w, "%s: hardware[%d]", what, i);
        TERN_TRY(parse_hw_entry(s, e, w));
    }
    return TERN_OK;
}

/* The planner's optional fields: price, bandwidth home, at_home, utilisation, precision and
 * measured throughput. */
static tern_status site_planning(tern_site *s, const cJSON *obj, const char *what) {
    if (cJSON_HasObjectItem(obj, "price_per_device_hour")) {
        TERN_TRY(tern_json_number(obj, "price_per_device_hour", 1, &s->price_per_device_hour, what));
        if (s->price_per_device_hour < 0) return tern_err(TERN_EFORMAT, "%s: \"price_per_device_hour\" must not be negative", what);
    }
    if (cJSON_HasObjectItem(obj, "bandwidth_to_home_gbps")) {
        TERN_TRY(tern_json_number(obj, "bandwidth_to_home_gbps", 1, &s->bandwidth_gbps, what));
        if (s->bandwidth_gbps <= 0) return tern_err(TERN_EFORMAT, "%s: \"bandwidth_to_home_gbps\" must be positive", what);
    }
    const cJSON *home = cJSON_GetObjectItemCaseSensitive(obj, "at_home");
    if (home) {
        if (!cJSON_IsBool(home)) return tern_err(TERN_EFORMAT, "%s: \"at_home\" must be true or false", what);
        s->at_home = cJSON_IsTrue(home);
    }
    if (cJSON_HasObjectItem(obj, "utilisation")) {
        TERN_TRY(tern_json_number(obj, "utilisation", 1, &s->utilisation, what));
        if (!(s->utilisation > 0 && s->utilisation <= 1))
            return tern_err(TERN_EFORMAT, "%s: \"utilisation\" must be in (0, 1], got %g", what, s->utilisation);
        s->utilisation_given = 1;
    }
    if (cJSON_HasObjectItem(obj, "precision")) {
        char pn[16];
        TERN_TRY(tern_json_string(obj, "precision", 1, pn, sizeof pn, what));
        if (tern_prec_from_name(pn, &s->precision) != 0)
            return tern_err(TERN_EFORMAT, "%s: \"precision\" \"%s\" is not one of fp64, fp32, tf32, bf16, fp16, fp8, int8", what, pn);
    }
    const cJSON *tps = cJSON_GetObjectItemCaseSensitive(obj, "tokens_per_s");
    if (!tps) return TERN_OK;
    if (cJSON_IsString(tps) && tps->valuestring && !strcmp(tps->valuestring, "measure")) s->measure_here = 1;
    else if (cJSON_IsNumber(tps) && isfinite(tps->valuedouble) && tps->valuedouble > 0) s->tokens_per_s = tps->valuedouble;
    else return tern_err(TERN_EFORMAT, "%s: \"tokens_per_s\" must be a positive number (measured tokens/s per host) or \"measure\"", what);
    return TERN_OK;
}

static tern_status site_fields(tern_site *s, const cJSON *obj, const char *what) {
    static const char *const keys[] = {"site", "operator", "country", "hardware", "accelerator", "count", "note",
                                       "price_per_device_hour", "bandwidth_to_home_gbps", "at_home", "utilisation",
                                       "precision", "tokens_per_s", NULL};
    if (!cJSON_IsObject(obj)) return tern_err(TERN_EFORMAT, "%s: a site must be a JSON object", what);
    TERN_TRY(tern_json_check_keys(obj, keys, what));
    TERN_TRY(tern_json_string(obj, "site", 1, s->name, sizeof s->name, what));
    TERN_TRY(tern_json_string(obj, "operator", 1, s->operator_name, sizeof s->operator_name, what));
    char cc[8];
    TERN_TRY(tern_json_string(obj, "country", 1, cc, sizeof cc, what));
    if (!tern_country_valid(cc))
        return tern_err(TERN_EFORMAT, "%s: \"country\" is \"%s\", not an ISO 3166-1 alpha-2 code (two upper-case letters, such as \"DE\")",
                        what, cc);
    memcpy(s->country, cc, 3);
    TERN_TRY(site_hardware(s, obj, what));
    return site_planning(s, obj, what);
}

tern_status tern_site_from_json(tern_site *s, const cJSON *obj, const char *what) {
    memset(s, 0, sizeof *s);
    s->price_per_device_hour = s->bandwidth_gbps = s->utilisation = s->tokens_per_s = -1;
    s->precision = TERN_PREC_BF16;
    s->path = strdup(what);
    if (!s->path) return tern_err(TERN_ENOMEM, "out of memory reading %s", what);
    tern_status st = site_fields(s, obj, what);
    if (st != TERN_OK) tern_site_free(s);
    return st;
}

tern_status tern_site_from_buffer(tern_site *s, const char *p, size_t n, const char *what) {
    cJSON *j;
    memset(s, 0, sizeof *s);
    TERN_TRY(tern_json_parse(&j, p, n, what));
    tern_status st = tern_site_from_json(s, j, what);
    cJSON_Delete(j);
    return st;
}

tern_status tern_site_load(tern_site *s, const char *path) {
    char *buf;
    size_t n;
    memset(s, 0, sizeof *s);
    TERN_TRY(tern_read_file(path, &buf, &n));
    tern_status st = tern_site_from_buffer(s, buf, n, path);
    free(buf);
    return st;
}

/* ---- policy ---- */

enum { RULE_RESIDENCY, RULE_HARDWARE, RULE_SEALING };
static const char *const rule_type_names[] = {"data_residency", "hardware_class", "sealing"};

typedef struct {
    char id[128];
    int type;
    char **classes;   /* data classes the rule covers; "*" = every run */
    size_t nclasses;
    char (*countries)[3];
    size_t ncountries;
    int all_countries; /* "*" */
    unsigned allowed;  /* hardware_class: bit (1 << tern_3a090) per allowed class */
} policy_rule;

struct tern_policy {
    char *path;
    char name[128];
    size_t nrules;
    policy_rule *rules;
};

void tern_policy_free(tern_policy *pol) {
    if (!pol) return;
    for (size_t i = 0; i < pol->nrules; i++) {
        for (size_t k = 0; k < pol->rules[i].nclasses; k++) free(pol->rules[i].classes[k]);
        free(pol->rules[i].classes);
        free(pol->rules[i].countries);
    }
    free(pol->rules);
    free(pol->path);
    free(pol);
}

static int class_name_ok(const char *s) {
    if (!*s) return 0;
    if (!strcmp(s, "*")) return 1;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
    return 1;
}

static tern_status add_country(policy_rule *r, const char *cc) {
    for (size_t i = 0; i < r->ncountries; i++)
        if (!strcmp(r->countries[i], cc)) return TERN_OK;
    char(*n)[3] = realloc(r->countries, (r->ncountries + 1) * sizeof *n);
    if (!n) return tern_err(TERN_ENOMEM, "out of memory reading a policy");
    r->countries = n;
    memcpy(r->countries[r->ncountries++], cc, 3);
    return TERN_OK;
}

/* A list of codes, "@set" references and (where allow_all) "*"; empty only where allow_empty. */
static tern_status parse_countries(policy_rule *r, const cJSON *list, const cJSON *sets, int allow_all, int allow_empty,
                                   const char *key, const char *what) {
    if (!cJSON_IsArray(list))
        return tern_err(TERN_EFORMAT, "%s: \"%s\" must be an array of ISO 3166-1 alpha-2 codes", what, key);
    for (const cJSON *c = list->child; c; c = c->next) {
        if (!cJSON_IsString(c) || !c->valuestring)
            return tern_err(TERN_EFORMAT, "%s: \"%s\" must hold strings", what, key);
        const char *v = c->valuestring;
        if (!strcmp(v, "*")) {
            if (!allow_all) return tern_err(TERN_EFORMAT, "%s: \"*\" is not allowed in \"%s\"", what, key);
            r->all_countries = 1;
        } else if (v[0] == '@') {
            const cJSON *set = sets ? cJSON_GetObjectItemCaseSensitive(sets, v + 1) : NULL;
            if (!set) return tern_err(TERN_EFORMAT, "%s: \"%s\" names country set \"%s\", which \"country_sets\" does not define", what, key, v + 1);
            for (const cJSON *m = set->child; m; m = m->next) TERN_TRY(add_country(r, m->valuestring));
        } else if (tern_country_valid(v)) {
            TERN_TRY(add_country(r, v));
        } else {
            return tern_err(TERN_EFORMAT, "%s: \"%s\" holds \"%s\", not an ISO 3166-1 alpha-2 code", what, key, v);
        }
    }
    if (!r->all_countries && r->ncountries == 0 && !allow_empty)
        return tern_err(TERN_EFORMAT, "%s: \"%s\" is empty", what, key);
    return TERN_OK;
}

static tern_status add_class(policy_rule *r, const char *name) {
    char **n = realloc(r->classes, (r->nclasses + 1) * sizeof *n);
    if (!n) return tern_err(TERN_ENOMEM, "out of memory reading a policy");
    r->classes = n;
    if (!(r->classes[r->nclasses] = strdup(name))) return tern_err(TERN_ENOMEM, "out of memory reading a policy");
    r->nclasses++;
    return TERN_OK;
}

static tern_status parse_classes(policy_rule *r, const cJSON *list, const char *what) {
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return tern_err(TERN_EFORMAT, "%s: \"data_classes\" must be a non-empty array of class names", what);
    for (const cJSON *c = list->child; c; c = c->next) {
        if (!cJSON_IsString(c) || !c->valuestring || !class_name_ok(c->valuestring))
            return tern_err(TERN_EFORMAT,
                            "%s: \"data_classes\" entries must be names of letters, digits, '_', '-', '.' (or \"*\")",
                            what);
        TERN_TRY(add_class(r, c->valuestring));
    }
    return TERN_OK;
}

static tern_status parse_rule(policy_rule *r, const cJSON *o, const cJSON *sets, const char *what) {
    static const char *const res_keys[] = {"id", "type", "description", "data_classes", "countries", NULL};
    static const char *const hw_keys[] = {"id", "type", "description", "countries", "allowed_classes", NULL};
    static const char *const seal_keys[] = {"id", "type", "description", "data_classes", "except_countries", NULL};
    if (!cJSON_IsObject(o)) return tern_err(TERN_EFORMAT, "%s: a rule must be an object", what);
    TERN_TRY(tern_json_string(o, "id", 1, r->id, sizeof r->id, what));
    char type[32];
    TERN_TRY(tern_json_string(o, "type", 1, type, sizeof type, what));
    r->type = -1;
    for (int t = 0; t < 3; t++)
        if (!strcmp(type, rule_type_names[t])) r->type = t;
    if (r->type < 0)
        return tern_err(TERN_EFORMAT,
                        "%s: rule \"%s\" has unknown type \"%s\" (expected data_residency, hardware_class or sealing)",
                        what, r->id, type);
    char w[600];
    tern_fmt(w, sizeof w, "%s: rule \"%s\"", what, r->id);
    if (cJSON_HasObjectItem(o, "description") && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "description")))
        return tern_err(TERN_EFORMAT, "%s: \"description\" must be a string", w);
    if (r->type == RULE_RESIDENCY) {
        TERN_TRY(tern_json_check_keys(o, res_keys, w));
        const cJSON *dc = cJSON_GetObjectItemCaseSensitive(o, "data_classes");
        if (!dc) return tern_err(TERN_EFORMAT, "%s: missing field \"data_classes\"", w);
        TERN_TRY(parse_classes(r, dc, w));
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(o, "countries");
        if (!cs) return tern_err(TERN_EFORMAT, "%s: missing field \"countries\"", w);
        TERN_TRY(parse_countries(r, cs, sets, 0, 0, "countries", w));
    } else if (r->type == RULE_HARDWARE) {
        TERN_TRY(tern_json_check_keys(o, hw_keys, w));
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(o, "countries");
        if (!cs) return tern_err(TERN_EFORMAT, "%s: missing field \"countries\"", w);
        TERN_TRY(parse_countries(r, cs, sets, 1, 0, "countries", w));
        const cJSON *al = cJSON_GetObjectItemCaseSensitive(o, "allowed_classes");
        if (!al) return tern_err(TERN_EFORMAT, "%s: missing field \"allowed_classes\"", w);
        if (!cJSON_IsArray(al))
            return tern_err(TERN_EFORMAT, "%s: \"allowed_classes\" must be an array", w);
        for (const cJSON *c = al->child; c; c = c->next) {
            int found = -1;
            for (int k = 0; k <= TERN_3A090_UNDETERMINED; k++)
                if (cJSON_IsString(c) && c->valuestring && !strcmp(c->valuestring, tern_3a090_name((tern_3a090)k)))
                    found = k;
            if (found < 0)
                return tern_err(TERN_EFORMAT,
                                "%s: \"allowed_classes\" entries must be \"not 3A090\", \"3A090.b\", \"3A090.a\" or "
                                "\"undetermined\"",
                                w);
            r->allowed |= 1u << found;
        }
    } else {
        TERN_TRY(tern_json_check_keys(o, seal_keys, w));
        const cJSON *dc = cJSON_GetObjectItemCaseSensitive(o, "data_classes");
        if (dc)
            TERN_TRY(parse_classes(r, dc, w));
        else
            TERN_TRY(add_class(r, "*")); /* no data_classes: every run */
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(o, "except_countries");
        if (ex) TERN_TRY(parse_countries(r, ex, sets, 0, 1, "except_countries", w));
    }
    return TERN_OK;
}

tern_status tern_policy_from_buffer(tern_policy **out, const char *p, size_t n, const char *what) {
    static const char *const keys[] = {"policy", "description", "country_sets", "rules", NULL};
    *out = NULL;
    cJSON *j;
    TERN_TRY(tern_json_parse(&j, p, n, what));
    tern_policy *pol = calloc(1, sizeof *pol);
    tern_status st = TERN_OK;
    if (!pol || !(pol->path = strdup(what))) {
        st = tern_err(TERN_ENOMEM, "out of memory reading %s", what);
        goto done;
    }
    if (!cJSON_IsObject(j)) {
        st = tern_err(TERN_EFORMAT, "%s: a policy must be a JSON object", what);
        goto done;
    }
    if ((st = tern_json_check_keys(j, keys, what)) != TERN_OK) goto done;
    if ((st = tern_json_string(j, "policy", 1, pol->name, sizeof pol->name, what)) != TERN_OK) goto done;
    const cJSON *sets = cJSON_GetObjectItemCaseSensitive(j, "country_sets");
    if (sets) {
        if (!cJSON_IsObject(sets)) {
            st = tern_err(TERN_EFORMAT, "%s: \"country_sets\" must be an object of named code lists", what);
            goto done;
        }
        for (const cJSON *s = sets->child; s; s = s->next) {
            int ok = cJSON_IsArray(s) && cJSON_GetArraySize(s) > 0;
            for (const cJSON *m = ok ? s->child : NULL; m; m = m->next)
                if (!cJSON_IsString(m) || !tern_country_valid(m->valuestring)) ok = 0;
            if (!ok) {
                st = tern_err(TERN_EFORMAT,
                              "%s: country set \"%s\" must be a non-empty array of ISO 3166-1 alpha-2 codes", what,
                              s->string);
                goto done;
            }
        }
    }
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(j, "rules");
    if (!rules || !cJSON_IsArray(rules)) {
        st = tern_err(TERN_EFORMAT, "%s: %s", what, rules ? "\"rules\" must be an array" : "missing field \"rules\"");
        goto done;
    }
    int nr = cJSON_GetArraySize(rules);
    if (nr > 1024) {
        st = tern_err(TERN_EFORMAT, "%s: %d rules, more than the 1024 tern reads", what, nr);
        goto done;
    }
    pol->rules = calloc(nr ? (size_t)nr : 1, sizeof *pol->rules);
    if (!pol->rules) {
        st = tern_err(TERN_ENOMEM, "out of memory reading %s", what);
        goto done;
    }
    int i = 0;
    for (const cJSON *r = rules->child; r; r = r->next, i++) {
        char w[600];
        tern_fmt(w, sizeof w, "%s: rules[%d]", what, i);
        pol->nrules++;
        if ((st = parse_rule(&pol->rules[i], r, sets, w)) != TERN_OK) goto done;
        for (int k = 0; k < i; k++)
            if (!strcmp(pol->rules[k].id, pol->rules[i].id)) {
                st = tern_err(TERN_EFORMAT, "%s: rule id \"%s\" is used twice", what, pol->rules[i].id);
                goto done;
            }
    }
done:
    cJSON_Delete(j);
    if (st != TERN_OK) {
        tern_policy_free(pol);
        return st;
    }
    *out = pol;
    return TERN_OK;
}

tern_status tern_policy_load(tern_policy **out, const char *path) {
    char *buf;
    size_t n;
    *out = NULL;
    TERN_TRY(tern_read_file(path, &buf, &n));
    tern_status st = tern_policy_from_buffer(out, buf, n, path);
    free(buf);
    return st;
}

static int rule_covers_class(const policy_rule *r, const char *data_class) {
    for (size_t i = 0; i < r->nclasses; i++) {
        if (!strcmp(r->classes[i], "*")) return 1;
        if (data_class ? !strcmp(r->classes[i], data_class) : !strcmp(r->classes[i], "unclassified")) return 1;
    }
    return 0;
}

static int rule_has_country(const policy_rule *r, const char *cc) {
    if (r->all_countries) return 1;
    for (size_t i = 0; i < r->ncountries; i++)
        if (!strcmp(r->countries[i], cc)) return 1;
    return 0;
}

static void country_list(char *out, size_t n, const policy_rule *r) {
    out[0] = 0;
    if (r->all_countries) {
        snprintf(out, n, "every country");
        return;
    }
    for (size_t i = 0; i < r->ncountries; i++) {
        if (i) strncat(out, ", ", n - strlen(out) - 1);
        strncat(out, r->countries[i], n - strlen(out) - 1);
    }
    if (!r->ncountries) snprintf(out, n, "no country");
}

static void class_list(char *out, size_t n, unsigned mask) {
    out[0] = 0;
    for (int k = 0; k <= TERN_3A090_UNDETERMINED; k++)
        if (mask & (1u << k)) {
            if (out[0]) strncat(out, ", ", n - strlen(out) - 1);
            strncat(out, tern_3a090_name((tern_3a090)k), n - strlen(out) - 1);
        }
    if (!out[0]) snprintf(out, n, "none");
}

static void forbid(tern_policy_verdict *v, const policy_rule *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void forbid(tern_policy_verdict *v, const policy_rule *r, const char *fmt, ...) {
    v->allowed = 0;
    snprintf(v->rule_id, sizeof v->rule_id, "%s", r->id);
    snprintf(v->rule_type, sizeof v->rule_type, "%s", rule_type_names[r->type]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
}

tern_status tern_policy_eval(const tern_policy *pol, const tern_site *site, const char *data_class, int sealed,
                             tern_policy_verdict *v) {
    memset(v, 0, sizeof *v);
    v->allowed = 1;
    if (!pol) return TERN_OK;
    char dcq[160];
    if (data_class)
        snprintf(dcq, sizeof dcq, "class \"%s\"", data_class);
    else
        snprintf(dcq, sizeof dcq, "no class (unclassified)");
    for (size_t i = 0; i < pol->nrules; i++) {
        const policy_rule *r = &pol->rules[i];
        char cl[1024];
        if (r->type == RULE_RESIDENCY || r->type == RULE_SEALING) {
            if (!rule_covers_class(r, data_class)) continue;
        }
        if (!site) {
            forbid(v, r, "the rule covers data of %s and needs to know where the run goes; give --site FILE", dcq);
            return TERN_OK;
        }
        if (r->type == RULE_RESIDENCY) {
            if (rule_has_country(r, site->country)) continue;
            country_list(cl, sizeof cl, r);
            forbid(v, r, "data of %s may be processed only in %s; site \"%s\" (%s) is in %s", dcq, cl, site->name,
                   site->path, site->country);
            return TERN_OK;
        }
        if (r->type == RULE_SEALING) {
            if (sealed || rule_has_country(r, site->country)) continue;
            char outside[1100] = "";
            if (r->ncountries) {
                country_list(cl, sizeof cl, r);
                snprintf(outside, sizeof outside, " outside %s", cl);
            }
            forbid(v, r, "runs on data of %s%s must seal their files (give --key); site \"%s\" (%s) is in %s", dcq,
                   outside, site->name, site->path, site->country);
            return TERN_OK;
        }
        /* hardware_class */
        if (!rule_has_country(r, site->country)) continue;
        for (size_t h = 0; h < site->nhw; h++) {
            const tern_site_hw *hw = &site->hw[h];
            if (r->allowed & (1u << hw->cls.cls)) continue;
            char allowed[128];
            class_list(allowed, sizeof allowed, r->allowed);
            country_list(cl, sizeof cl, r);
            forbid(v, r,
                   "in %s only hardware of class %s is allowed; site \"%s\" (%s) has %s x %ld, class %s (%s)", cl,
                   allowed, site->name, site->path, hw->name, hw->count, tern_3a090_name(hw->cls.cls), hw->cls.reason);
            return TERN_OK;
        }
    }
    return TERN_OK;
}

tern_status tern_policy_check(const char *policy_path, const char *site_path, const char *data_class, int sealed) {
    tern_site site;
    int have_site = 0;
    tern_policy *pol = NULL;
    if (site_path) {
        TERN_TRY(tern_site_load(&site, site_path));
        have_site = 1;
    }
    if (!policy_path) {
        if (have_site) tern_site_free(&site);
        return TERN_OK;
    }
    tern_status st = tern_policy_load(&pol, policy_path);
    tern_policy_verdict v;
    if (st == TERN_OK) st = tern_policy_eval(pol, have_site ? &site : NULL, data_class, sealed, &v);
    if (st == TERN_OK && !v.allowed)
        st = tern_err(TERN_EPOLICY, "%s: rule \"%s\" (%s) forbids this run: %s", policy_path, v.rule_id, v.rule_type,
                      v.reason);
    tern_policy_free(pol);
    if (have_site) tern_site_free(&site);
    return st;
}
