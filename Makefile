# vmlab: one entry point. `make` builds build/vmlab; `make run` and `make test` install what
# is missing first (make deps), so each works on a fresh Debian 12 machine.
# Directories add their own rules in */module.mk and */*/module.mk, included below.

SHELL := /bin/bash
BUILD := build
# `make ARCH=arm64`: cross-builds the static arm64 vmlab and guest programs under build/arm64
# (arch/arm64/arm64.mk says what is left out and why).
ARCH ?= x86_64
ifeq ($(ARCH),arm64)
include arch/arm64/arm64.mk
endif
CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
PYTHON := /usr/bin/python3

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
WARN := -Wall -Wextra -Werror
CSTD := -std=c11 -D_GNU_SOURCE
INCLUDES := -I. -I$(BUILD)/gen
PKGS ?= unicorn json-c libprotobuf-c
PKG_CFLAGS = $(shell $(PKG_CONFIG_ENV) pkg-config --cflags $(PKGS) 2>/dev/null)
# unicorn is linked statically everywhere, its store path, TLB fill, CPUID, SYSCALL, PAUSE and
# RDTSC wrapped, its block hook given per-block data (sim/unicorn_{stores,mmu,cpuid,syscall,pause,rdtsc,blockhook}.c say why): tests, fuzzers and benchmarks run the engine exactly as the release binary does.
# -u pulls the wrappers out of the library archive before unicorn asks for them.
UNICORN_WRAP = $(foreach f,tlb_protect_code page_collection_lock page_collection_unlock \
                 tb_invalidate_phys_page_fast tlb_set_page_with_attrs tlb_flush tlb_flush_page \
                 helper_cpuid helper_wrmsr helper_syscall helper_rdtsc helper_rdtscp helper_pause \
                 tcg_const_i64,\
                 -Wl,--wrap=$(f)_x86_64) \
               -Wl,--wrap=memory_mapping -Wl,-u,__wrap_tlb_protect_code_x86_64 \
               -Wl,-u,__wrap_memory_mapping -Wl,-u,__wrap_helper_cpuid_x86_64 \
               -Wl,-u,__wrap_helper_syscall_x86_64 -Wl,-u,__wrap_helper_rdtsc_x86_64 -Wl,-u,__wrap_helper_pause_x86_64 \
               -Wl,-u,__wrap_tcg_const_i64_x86_64
UNICORN_LIBS = $(UNICORN_WRAP) -Wl,-Bstatic -lunicorn -Wl,-Bdynamic
PKG_LIBS = $(shell pkg-config --libs json-c libprotobuf-c 2>/dev/null) $(UNICORN_LIBS) \
           -lfdt -lcapstone -lzstd -lz -lseccomp -lpthread -lm
CFLAGS_COMMON = $(CSTD) $(WARN) $(INCLUDES) $(PKG_CFLAGS) -DVMLAB_VERSION='"$(VERSION)"' -MMD -MP
CFLAGS_REL := -O2 -g
CFLAGS_ASAN := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

# Host library sources: everything in these directories except program entry points.
LIB_DIRS ?= vmm vmm/kvm sim devices devices/virtio devices/disk devices/net traces
LIB_SRCS = $(filter-out %/main.c $(LIB_EXCLUDE) $(wildcard */bench_*.c */*/bench_*.c) $(wildcard */fuzz_*.c),\
             $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))) $(GEN_SRCS)
LIB_OBJS = $(patsubst %.c,$(BUILD)/rel/%.o,$(LIB_SRCS))
LIB_OBJS_ASAN = $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRCS))
GEN_SRCS :=
GEN_HDRS :=

.PHONY: all deps run test bench clean guests check-deps
.SECONDARY:
all: $(BUILD)/vmlab guests

# Extra rules contributed by directories (generated code, guests, fuzzers, tests).
include $(sort $(wildcard */module.mk) $(wildcard */*/module.mk))

$(BUILD)/rel/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_REL) -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_ASAN) -c $< -o $@

$(BUILD)/libvmlab.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/asan/libvmlab.a: $(LIB_OBJS_ASAN)
	@rm -f $@
	ar rcs $@ $^

# The release binary is linked fully static: resolving unicorn's symbols and relocating a
# position-independent binary at every start cost half of a short guest's boot-to-exit
# (hello: 6.0 ms dynamic PIE, 4.0 ms static libraries, 3.2 ms fully static). libslirp
# (--net user), which Debian ships only as a shared library, runs in the helper
# build/vmlab-slirp (slirp_helper/), so nothing here needs it.
STATIC_LIBS ?= -static $(UNICORN_WRAP) -lunicorn -ljson-c -lprotobuf-c -lfdt -lcapstone -lzstd \
              -lz -lseccomp -lpthread -lm -lrt

$(BUILD)/vmlab: $(BUILD)/rel/vmm/main.o $(BUILD)/libvmlab.a
	$(CC) $(CFLAGS_REL) -o $@ $^ $(STATIC_LIBS)

$(BUILD)/asan/vmlab: $(BUILD)/asan/vmm/main.o $(BUILD)/asan/libvmlab.a
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(PKG_LIBS)

deps:
	@./scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	@./scripts/demo.sh

test: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all test-build
	@./scripts/run-tests.sh

bench: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all bench-build
	@./scripts/bench.sh

clean:
	rm -rf $(BUILD) reports/out reports/bench.json

-include $(shell find $(BUILD) -path '*/sysroot' -prune -o -type f -name '*.d' -print 2>/dev/null)

# Benchmarks: every bench_<name>.c under the source tree becomes $(BUILD)/bench/bench_<name>,
# built -O2 against the release library.
BENCH_SRCS := $(wildcard */bench_*.c */*/bench_*.c)
BENCH_BINS := $(foreach s,$(BENCH_SRCS),$(BUILD)/bench/$(basename $(notdir $(s))))
define bench_rule
$(BUILD)/bench/$(basename $(notdir $(1))): $(1) $(BUILD)/libvmlab.a $(TEST_SUPPORT_SRCS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_COMMON) $$(CFLAGS_REL) -o $$@ $(1) $(TEST_SUPPORT_SRCS) $(BUILD)/libvmlab.a $$(PKG_LIBS)
endef
$(foreach s,$(BENCH_SRCS),$(eval $(call bench_rule,$(s))))
.PHONY: bench-build
bench-build: $(BENCH_BINS)

# Scenarios (harness/): `make scenarios [JUNIT=FILE]`; `make golden` re-records the golden
# traces and deterministic baselines after an intended behaviour change (commit them).
.PHONY: scenarios golden report coverage ab
scenarios: all
	harness/vmlab-scenarios run --jobs 2 $(if $(JUNIT),--junit $(JUNIT)) --results $(BUILD)/scenario-results.json

golden: all
	harness/vmlab-scenarios run --jobs 2 --backend sim --update-baselines

# This tree's performance against revision REV (default HEAD~1) built under $(BUILD)/ab/, on
# this machine, runs interleaved: no stored baseline needed (harness/README.md, "ab").
ab: all
	harness/vmlab-scenarios --build $(BUILD) ab --rev $(or $(REV),HEAD~1) $(NAMES)

# A test-only vmlab whose UART has a deliberate bug (VMLAB_TEST_DEVICE_BUG), to show that a
# trace of a buggy run reproduces the bug on replay. Never installed or used otherwise.
$(BUILD)/testbug/uart8250.o: devices/uart8250.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_ASAN) -DVMLAB_TEST_DEVICE_BUG -c $< -o $@

$(BUILD)/testbug/vmlab: $(BUILD)/asan/vmm/main.o $(BUILD)/testbug/uart8250.o $(BUILD)/asan/libvmlab.a
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(PKG_LIBS)

# A test-only vmlab with the VMLAB_TEST_DELAY_US knob (vmm/main.c): the release library's
# objects, so the harness's A/B tests time the code users run, slowed on purpose; linked like
# the benchmarks (not -static, which the sanitizers of `make coverage`'s build refuse).
# The release binary ignores the variable.
$(BUILD)/testdelay/main.o: vmm/main.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_REL) -DVMLAB_TEST_DELAY -c $< -o $@

$(BUILD)/testdelay/vmlab: $(BUILD)/testdelay/main.o $(BUILD)/libvmlab.a
	$(CC) $(CFLAGS_REL) -o $@ $^ $(PKG_LIBS)


# A test-only vmlab whose UART makes a system call outside the VM sandbox's allow-list
# (VMLAB_TEST_SANDBOX_TRIGGER), to show a sandboxed VM dying of SIGSYS. Never used otherwise.
$(BUILD)/testsandbox/uart8250.o: devices/uart8250.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_ASAN) -DVMLAB_TEST_SANDBOX_TRIGGER -c $< -o $@

$(BUILD)/testsandbox/vmlab: $(BUILD)/asan/vmm/main.o $(BUILD)/testsandbox/uart8250.o $(BUILD)/asan/libvmlab.a
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(PKG_LIBS)

test-build: $(BUILD)/testbug/vmlab $(BUILD)/testdelay/vmlab $(BUILD)/testsandbox/vmlab
