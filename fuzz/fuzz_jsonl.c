/* libFuzzer target: one line of JSON Lines through tern_jsonl_text (the member "text"), as
 * `prepare` reads each line. An accepted line must be a JSON object to cJSON too, and its text
 * what cJSON finds there, whenever cJSON can say: with no \u0000 anywhere (a cJSON string ends at
 * a NUL) and no \uD8xx-\uDFxx escape (JSON's grammar allows an unpaired surrogate in a member
 * tern does not read, as Python's json module does, and cJSON refuses the whole line), and one
 * "text" member. A refusal must say where (inside the line) and what. Not the reading of lines
 * from files (fuzz_text_stream.c). Format: docs/FORMATS.md "Inputs of prepare". */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "tern/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *line = (uint8_t *)fuzz_dup(data, size);
    uint8_t *text = NULL;
    size_t tn = 0, at = 0;
    const char *why = NULL;
    tern_jsonl_status r;
    tern_err_clear();
    tern_status st = tern_jsonl_text(line, size, "text", &text, &tn, &r, &at, &why);
    FUZZ_REQUIRE(st == TERN_OK || st == TERN_ENOMEM, "status %d", (int)st);
    int surrogate = 0;
    for (size_t i = 0; i + 3 < size && !surrogate; i++)
        surrogate = line[i] == '\\' && line[i + 1] == 'u' && (line[i + 2] == 'd' || line[i + 2] == 'D') && strchr("89abcdefABCDEF", line[i + 3]) &&
                    line[i + 3];
    if (st == TERN_OK && r == TERN_JSONL_OK && !surrogate) {
        FUZZ_REQUIRE(text && tn <= size, "%zu bytes of text from a line of %zu", tn, size);
        cJSON *j = cJSON_ParseWithLength((const char *)line, size);
        FUZZ_REQUIRE(j && cJSON_IsObject(j), "tern accepted a line that cJSON does not parse as an object");
        int members = 0;
        const cJSON *item = NULL;
        for (const cJSON *c = j->child; c; c = c->next)
            if (c->string && !strcmp(c->string, "text")) members++, item = c;
        if (members == 1 && !memmem(line, size, "\\u0000", 6)) {
            FUZZ_REQUIRE(cJSON_IsString(item) && strlen(item->valuestring) == tn && !memcmp(item->valuestring, text, tn),
                         "tern's text (%zu bytes) is not cJSON's", tn);
        }
        cJSON_Delete(j);
    } else if (st == TERN_OK && r == TERN_JSONL_OK) {
        FUZZ_REQUIRE(text && tn <= size, "%zu bytes of text from a line of %zu", tn, size);
    } else if (st == TERN_OK && (r == TERN_JSONL_INVALID_JSON || r == TERN_JSONL_INVALID_UTF8)) {
        FUZZ_REQUIRE(why && at <= size, "a refusal at byte %zu of %zu, why %s", at, size, why ? why : "(none)");
        FUZZ_REQUIRE(!text, "text given with a refusal");
    } else if (st == TERN_OK) {
        FUZZ_REQUIRE(r == TERN_JSONL_MISSING_KEY || r == TERN_JSONL_NOT_STRING, "result %d", (int)r);
        FUZZ_REQUIRE(!text && !why, "a missing or non-string member with text or a position");
    }
    free(text);
    free(line);
    return 0;
}
