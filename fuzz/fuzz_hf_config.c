/* libFuzzer target: a Hugging Face GPT-2 config.json (tern import, tern sample on an HF folder)
 * through tern_io_read_hf_config, handed the input as an in-memory file. Not the weights (see
 * fuzz_safetensors.c). An accepted configuration must pass tern_model_config_check.
 * Format: transformers' GPT2Config. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(data, size);
    tern_model_config cfg;
    tern_err_clear();
    tern_status st = tern_io_read_hf_config(path, &cfg);
    fuzz_check_refusal(st, path);
    if (st == TERN_OK) FUZZ_REQUIRE(tern_model_config_check(&cfg) == TERN_OK, "accepted a bad configuration: %s", tern_errmsg());
    return 0;
}
