# tern: one Makefile. `make` builds build/libtern.a and build/tern; `make test` builds and
# runs the suite; `make test SAN=1` does the same under AddressSanitizer and UBSan;
# `make demo` prepares the bundled corpus, trains, evaluates and samples.
CC      ?= gcc
SAN     ?= 0
BUILD   := build
ifeq ($(SAN),1)
BUILD   := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT     := -O1 -g
else
OPT     := -O2 -g
endif

CPPFLAGS := -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS   := -std=c17 $(OPT) -Wall -Wextra -Werror -fopenmp -fno-fast-math $(SANFLAGS)
LDLIBS   := -fopenmp -lsodium -lcjson -ldnnl -lm -ldl
LDFLAGS  := $(SANFLAGS)

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cli/*'))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_STAMP := build/.deps-ok

.PHONY: all test demo bench clean deps fixtures
all: $(BUILD)/libtern.a $(BUILD)/tern

deps: $(DEPS_STAMP)
$(DEPS_STAMP): tools/install-deps.sh
	@bash tools/install-deps.sh
	@mkdir -p build && touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libtern.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tern: $(CLI_OBJ) $(BUILD)/libtern.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtern.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/check.h $(BUILD)/libtern.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -MMD -MP $< -o $@ $(LDFLAGS) $(BUILD)/libtern.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libtern.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libtern.a $(LDLIBS)

test: $(BUILD)/tern $(TESTS)
	@BUILD=$(BUILD) SAN=$(SAN) bash tests/run.sh $(TESTS)

bench: $(BUILD)/tern $(BENCHES)

demo: $(BUILD)/tern
	@bash tools/demo.sh $(BUILD)/tern

fixtures:
	python3 tools/make_fixtures.py

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
