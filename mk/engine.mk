#-------------------------------------------------------------------------
#
# engine.mk
#	  Build, test, fuzz and benchmark the PostgreSQL-free nokv engine core.
#
# Usage (from the repository root; the top-level Makefile forwards to it):
#
#	make -f mk/engine.mk lib			build/release/libnokv_engine.a
#	make -f mk/engine.mk tests			build/release/test/test_*
#	make -f mk/engine.mk check			run the release unit tests with prove
#	make -f mk/engine.mk asan-check		the same under ASan + UBSan (build/asan)
#	make -f mk/engine.mk fuzz			build and run every libFuzzer target
#	make -f mk/engine.mk bench			build/release/nokv-bench
#	make -f mk/engine.mk demo			build/release/nokv-demo
#	make -f mk/engine.mk cli			build/release/nokv (offline inspection CLI)
#	make -f mk/engine.mk clean
#
# Discovery: engine sources are src/engine/*.c, unit tests are
# test/engine/test_*.c (one TAP-producing program each, built against the
# static library), fuzz targets are test/fuzz/fuzz_*.c (each defines
# LLVMFuzzerTestOneInput) with optional seed inputs in
# test/fuzz/seeds/<name without fuzz_>/, benchmark sources are bench/*.c.
#
# Knobs: CC, CLANG, EXTRA_CFLAGS, FUZZ_SECONDS (per target, default 15),
# FUZZ_FLAGS (extra libFuzzer flags), PROVE_FLAGS (default --timer),
# TEST_TIMEOUT (seconds per test program, default 900, 0 = none),
# REQUIRE_TESTS=1 (make check fail when there is no unit test).
#
# mk/engine.mk
#-------------------------------------------------------------------------

# Every path below is relative to the repository root.  When invoked from
# elsewhere (make -f /path/to/mk/engine.mk ...), re-run from the root.
NOKV_ROOT := $(patsubst %/,%,$(dir $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))))

ifneq ($(abspath $(CURDIR)),$(NOKV_ROOT))

nokv_goals := $(or $(MAKECMDGOALS),all)
.PHONY: $(nokv_goals)
$(firstword $(nokv_goals)):
	+@$(MAKE) --no-print-directory -C $(NOKV_ROOT) -f mk/engine.mk $(MAKECMDGOALS)
$(wordlist 2,$(words $(nokv_goals)),$(nokv_goals)):
	@:

else

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
SHELL := /bin/bash

CLANG ?= clang
AR ?= ar

WARN_CFLAGS := -Wall -Wextra -Werror
BASE_CFLAGS := -std=gnu11 $(WARN_CFLAGS) -fPIC -Iinclude $(EXTRA_CFLAGS)
DEP_CFLAGS = -MMD -MP
# test/engine/tap.h is header-only: not every test uses every helper
TEST_CFLAGS := -Itest/engine
LIBS := -llz4 -lpthread -lm

CFLAGS_release := -O2 -g
# NOKV_CHECK_INVARIANTS: also check callers' promises too costly to check in release
CFLAGS_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -DNOKV_CHECK_INVARIANTS
LDFLAGS_release :=
LDFLAGS_asan := -fsanitize=address,undefined

FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer
FUZZ_SECONDS ?= 15
FUZZ_FLAGS ?=
PROVE ?= prove
PROVE_FLAGS ?= --timer
TEST_TIMEOUT ?= 900
REQUIRE_TESTS ?= 0

BENCH_LIBS := -lrocksdb -lleveldb -llz4 -lpthread -lstdc++ -lm

# ---------- discovery ----------

ENGINE_SRCS := $(sort $(wildcard src/engine/*.c))
TEST_SRCS := $(sort $(wildcard test/engine/test_*.c))
FUZZ_SRCS := $(sort $(wildcard test/fuzz/fuzz_*.c))
BENCH_SRCS := $(sort $(wildcard bench/*.c))
DEMO_SRC := src/tools/nokv_demo.c
CLI_SRC := src/tools/nokv_cli.c

TEST_NAMES := $(notdir $(TEST_SRCS:.c=))
FUZZ_NAMES := $(notdir $(FUZZ_SRCS:.c=))

VARIANTS := release asan

# per-variant file lists
engine_objs = $(patsubst src/engine/%.c,build/$(1)/obj/engine/%.o,$(ENGINE_SRCS))
engine_lib = build/$(1)/libnokv_engine.a
test_bins = $(addprefix build/$(1)/test/,$(TEST_NAMES))

RELEASE_LIB := $(call engine_lib,release)
ASAN_LIB := $(call engine_lib,asan)
RELEASE_TESTS := $(call test_bins,release)
ASAN_TESTS := $(call test_bins,asan)

FUZZ_ENGINE_OBJS := $(patsubst src/engine/%.c,build/fuzz/obj/engine/%.o,$(ENGINE_SRCS))
FUZZ_BINS := $(addprefix build/fuzz/bin/,$(FUZZ_NAMES))
BENCH_OBJS := $(patsubst bench/%.c,build/release/obj/bench/%.o,$(BENCH_SRCS))
BENCH_BIN := build/release/nokv-bench
DEMO_BIN := build/release/nokv-demo
CLI_BIN := build/release/nokv

# prove runs each test program through this wrapper (a per-test timeout)
ifeq ($(TEST_TIMEOUT),0)
PROVE_EXEC :=
else
PROVE_EXEC := --exec 'timeout --kill-after=30 $(TEST_TIMEOUT)'
endif

.PHONY: all lib tests check asan-lib asan-tests asan-check fuzz fuzz-build \
	bench demo cli clean list

all: lib tests cli

lib: $(RELEASE_LIB)
tests: $(RELEASE_TESTS)
asan-lib: $(ASAN_LIB)
asan-tests: $(ASAN_TESTS)

list:
	@echo "engine sources: $(ENGINE_SRCS)"
	@echo "unit tests:     $(TEST_NAMES)"
	@echo "fuzz targets:   $(FUZZ_NAMES)"
	@echo "bench sources:  $(BENCH_SRCS)"

# ---------- per-variant rules (release, asan) ----------

define variant_rules
build/$(1)/obj/engine/%.o: src/engine/%.c mk/engine.mk
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $$(CFLAGS_$(1)) $$(DEP_CFLAGS) -c $$< -o $$@

build/$(1)/obj/test/%.o: test/engine/%.c mk/engine.mk
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) $$(CFLAGS_$(1)) $$(TEST_CFLAGS) $$(DEP_CFLAGS) -c $$< -o $$@

# The archive is rebuilt from scratch whenever an object or the list of
# sources changes, so members of deleted sources do not linger.
$(call engine_lib,$(1)): $(call engine_objs,$(1)) build/$(1)/engine-sources.txt mk/engine.mk
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(AR) rcs $$@ $$(filter %.o,$$^)

build/$(1)/test/%: build/$(1)/obj/test/%.o $(call engine_lib,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$(LDFLAGS_$(1)) $$< $(call engine_lib,$(1)) $$(LIBS) -o $$@
endef

$(foreach v,$(VARIANTS),$(eval $(call variant_rules,$(v))))

# rewritten only when the set of engine sources changes
.PHONY: FORCE
build/%/engine-sources.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(ENGINE_SRCS)' | cmp -s - $@ 2>/dev/null || echo '$(ENGINE_SRCS)' > $@

# keep the test objects (they are intermediates of the pattern rules)
.SECONDARY:

# ---------- running the unit tests ----------

# run_prove(variant, binaries)
define run_prove
	@if [ -z "$(strip $(2))" ]; then \
		echo "no engine unit tests found (test/engine/test_*.c): nothing to run"; \
		if [ "$(REQUIRE_TESTS)" = 1 ]; then echo "REQUIRE_TESTS=1: failing"; exit 1; fi; \
		exit 0; \
	fi; \
	echo "running $(words $(2)) $(1) test program(s) with $(PROVE)"; \
	$(PROVE) $(PROVE_FLAGS) $(PROVE_EXEC) $(2)
endef

check: $(RELEASE_TESTS)
	$(call run_prove,release,$(RELEASE_TESTS))

asan-check: export ASAN_OPTIONS = detect_leaks=1:abort_on_error=1
asan-check: export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
asan-check: $(ASAN_TESTS)
	$(call run_prove,asan,$(ASAN_TESTS))

# ---------- fuzzing (clang + libFuzzer) ----------

build/fuzz/obj/engine/%.o: src/engine/%.c mk/engine.mk
	@mkdir -p $(@D)
	$(CLANG) $(BASE_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined $(DEP_CFLAGS) -c $< -o $@

build/fuzz/obj/fuzz/%.o: test/fuzz/%.c mk/engine.mk
	@mkdir -p $(@D)
	$(CLANG) $(BASE_CFLAGS) $(FUZZ_CFLAGS) -Itest/fuzz $(TEST_CFLAGS) -fsanitize=fuzzer,address,undefined $(DEP_CFLAGS) -c $< -o $@

build/fuzz/bin/%: build/fuzz/obj/fuzz/%.o $(FUZZ_ENGINE_OBJS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $(filter %.o,$^) $(LIBS) -o $@

fuzz-build: $(FUZZ_BINS)

# Each target runs for FUZZ_SECONDS on its corpus (build/fuzz/corpus/<name>,
# seeded from test/fuzz/seeds/<name without fuzz_>/); a crash, leak, timeout or OOM input
# is written to build/fuzz/artifacts/<name>/ and fails the target.  The full
# libFuzzer log goes to build/fuzz/logs/<name>.log; its tail is printed.
fuzz: export ASAN_OPTIONS = detect_leaks=1:abort_on_error=1
fuzz: export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
fuzz: $(FUZZ_BINS)
	@if [ -z "$(strip $(FUZZ_NAMES))" ]; then \
		echo "no fuzz targets found (test/fuzz/fuzz_*.c): nothing to run"; \
		exit 0; \
	fi; \
	failed=""; \
	mkdir -p build/fuzz/logs; \
	for name in $(FUZZ_NAMES); do \
		corpus=build/fuzz/corpus/$$name; \
		artifacts=build/fuzz/artifacts/$$name; \
		log=build/fuzz/logs/$$name.log; \
		mkdir -p $$corpus $$artifacts; \
		seeds=test/fuzz/seeds/$${name#fuzz_}; \
		if [ -d $$seeds ]; then \
			cp -R $$seeds/. $$corpus/; \
		fi; \
		echo "=== fuzz $$name: $(FUZZ_SECONDS)s, corpus $$corpus ($$(ls $$corpus | wc -l) inputs)"; \
		if build/fuzz/bin/$$name -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
				-rss_limit_mb=2048 -print_final_stats=1 \
				-artifact_prefix=$$artifacts/ $(FUZZ_FLAGS) $$corpus \
				</dev/null >$$log 2>&1; then \
			tail -n 12 $$log; \
			echo "=== fuzz $$name: ok"; \
		else \
			tail -n 150 $$log; \
			echo "=== fuzz $$name: FAILED (log $$log, artifacts in $$artifacts/)"; \
			ls -l $$artifacts; \
			failed="$$failed $$name"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "fuzz targets failed:$$failed"; \
		exit 1; \
	fi; \
	echo "all $(words $(FUZZ_NAMES)) fuzz target(s) ran clean"

# ---------- tools ----------

build/release/obj/bench/%.o: bench/%.c mk/engine.mk
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS_release) -Ibench $(DEP_CFLAGS) -c $< -o $@

$(BENCH_BIN): $(BENCH_OBJS) $(RELEASE_LIB)
	@if [ -z "$(strip $(BENCH_OBJS))" ]; then \
		echo "error: no benchmark sources found (bench/*.c)" >&2; exit 1; \
	fi
	$(CC) $(CFLAGS_release) $(BENCH_OBJS) $(RELEASE_LIB) $(BENCH_LIBS) -o $@

bench: $(BENCH_BIN)

build/release/obj/tools/%.o: src/tools/%.c mk/engine.mk
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS_release) $(DEP_CFLAGS) -c $< -o $@

$(DEMO_BIN): build/release/obj/tools/nokv_demo.o $(RELEASE_LIB)
	$(CC) $(CFLAGS_release) $< $(RELEASE_LIB) $(LIBS) -o $@

demo: $(DEMO_BIN)

$(CLI_BIN): build/release/obj/tools/nokv_cli.o $(RELEASE_LIB)
	$(CC) $(CFLAGS_release) $< $(RELEASE_LIB) $(LIBS) -o $@

cli: $(CLI_BIN)

clean:
	rm -rf build

# ---------- dependency tracking ----------

-include $(shell find build -name '*.d' 2>/dev/null)

endif
