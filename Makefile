# tern: one Makefile. `make` builds build/libtern.a and build/tern; `make test` builds and
# runs the suite; `make test SAN=1` does the same under AddressSanitizer and UBSan;
# `make demo` prepares the bundled corpus, trains, evaluates and samples.
CC      ?= gcc
SAN     ?= 0
BUILD   := build
ifeq ($(SAN),1)
BUILD   := build/san
# float-cast-overflow: GCC leaves it out of `undefined`; a double from a file cast to an int is a reader bug
SANFLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT     := -O1 -g
else
OPT     := -O2 -g
endif

CPPFLAGS := -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS   := -std=c17 $(OPT) -Wall -Wextra -Werror -fopenmp -fno-fast-math $(SANFLAGS)
LDLIBS   = -fopenmp -lsodium -lcjson -ldnnl -lzstd -lz -lcairo -lbz2 -lm -ldl $(MPI_LIBS)
LDFLAGS  := $(SANFLAGS)
# CUDA=1 (docs/GPU.md) adds the CUDA backend, built in $(BUILD)/cuda; its rules follow the sources.
ifeq ($(CUDA),1)
BUILD   := $(BUILD)/cuda
endif
# MPI (docs/DISTRIBUTED.md): src/comm/ speaks MPI when Open MPI's mpicc is found, looked for
# when the recipes run (after `deps` installed it); `make MPI=0` builds without, in $(BUILD)/nompi.
ifeq ($(MPI),0)
BUILD    := $(BUILD)/nompi
else
MPI_CFLAGS = $(if $(shell command -v mpicc),-DTERN_MPI $(shell mpicc --showme:compile))
MPI_LIBS   = $(if $(shell command -v mpicc),$(shell mpicc --showme:link))
$(BUILD)/obj/src/comm/%.o: CPPFLAGS += $(MPI_CFLAGS)
endif

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cli/*'))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_STAMP := build/.deps-ok

# CUDA=1: src/backend/cuda/*.cu through nvcc (sm_90 and sm_80 machine code and compute_90 PTX for
# newer GPUs; CUDA_GENCODE overrides), -DTERN_CUDA for the C sources (backend.c then offers the
# device) and the CUDA runtime linked; cuBLAS and cuBLASLt are opened when a GPU backend is
# (cuda.c). With MPI and the toolkit's nccl.h, NCCL for the communicator (src/comm/nccl.c).
# Warnings are errors on both compilers.
ifeq ($(CUDA),1)
CUDA_HOME ?= $(or $(patsubst %/bin/nvcc,%,$(shell command -v nvcc 2>/dev/null)),/usr/local/cuda)
NVCC      := $(CUDA_HOME)/bin/nvcc
ifeq ($(wildcard $(NVCC)),)
$(error CUDA=1: no nvcc at $(NVCC); install the CUDA toolkit or set CUDA_HOME)
endif
CUDA_GENCODE ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -std=c++17 -O3 $(CUDA_GENCODE) -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror,-fno-fast-math
CPPFLAGS  += -DTERN_CUDA -isystem $(CUDA_HOME)/include
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++ -lpthread # cuBLAS: dlopen (cuda.c)
CU_SRC    := $(sort $(wildcard src/backend/cuda/*.cu))
LIB_OBJ   += $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
ifneq ($(MPI),0)
NCCL_ON    = $(and $(shell command -v mpicc),$(wildcard $(CUDA_HOME)/include/nccl.h))
$(BUILD)/obj/src/comm/nccl.o: CPPFLAGS += $(if $(NCCL_ON),-DTERN_NCCL)
LDLIBS    += $(if $(NCCL_ON),-lnccl)
endif
$(BUILD)/obj/%.o: %.cu src/backend/cuda/cuda_int.h src/backend/cuda/common.cuh | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -Isrc -c $< -o $@
endif

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

ARCH ?= gpt2
demo: $(BUILD)/tern
	@bash tools/demo.sh $(BUILD)/tern $(ARCH)

fixtures:
	python3 tools/make_fixtures.py

clean:
	rm -rf build

# `make fuzz`: each fuzz/fuzz_*.c is a libFuzzer target, built with clang, ASan and UBSan against
# the library compiled the same way in build/fuzz, and run for FUZZ_SECONDS over its seed corpus
# fuzz/corpus/<format>. Only this target needs clang; docs/RELIABILITY.md has the figures.
FUZZ_SECONDS ?= 10
FUZZ_CC      ?= clang
FUZZ_BUILD   := build/fuzz
FUZZ_CFLAGS  := -std=c17 -O1 -g -Wall -Wextra -fopenmp -fno-fast-math -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
.PHONY: fuzz fuzz-build
fuzz: $(FUZZ_BINS)
	@bash fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)
fuzz-build: $(FUZZ_BINS)
$(FUZZ_BUILD)/.deps-ok: tools/install-deps.sh
	@bash tools/install-deps.sh --fuzz
	@mkdir -p $(dir $@) && touch $@
$(FUZZ_BUILD)/obj/%.o: %.c | $(FUZZ_BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
# backend/ reads no files, and its per-function `#pragma GCC target`s are GCC's: built as usual.
$(FUZZ_BUILD)/obj/src/backend/%.o: src/backend/%.c | $(FUZZ_BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/libtern.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_BUILD)/libtern.a
	$(FUZZ_CC) $(CPPFLAGS) -Ifuzz $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP $< -o $@ $(FUZZ_BUILD)/libtern.a $(LDLIBS)

-include $(shell find build -name '*.d' -type f -path '*/obj/*' 2>/dev/null) $(shell find build -name '*.d' -type f -path '*/tests/*' 2>/dev/null)
