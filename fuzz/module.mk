# Fuzzing (issue #10). Every fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput and becomes
# target <name>; seeds in fuzz/corpus/<name>/, dictionary fuzz/dict/<name>.dict (optional).
#   make fuzz          libFuzzer + ASan/UBSan (clang)        -> $(BUILD)/fuzz/<name>
#   make fuzz-afl      AFL++ (afl-clang-fast) + ASan/UBSan   -> $(BUILD)/fuzz-afl/<name>
#   make fuzz-repro    plain reproducer, gcc + ASan/UBSan    -> $(BUILD)/fuzz-repro/<name>
#   make fuzz-run TARGET=<name> [TIME=60] [FUZZ_FORK=1]   fuzz one target; crashes ->
#                      fuzz/crashes/<name>/ (FUZZ_FORK=1: go on after a crash)
#   make fuzz-smoke [TIME=20]               every target for TIME seconds, one after another
#   make fuzz-merge [TARGET=<name>]         re-minimise the checked-in corpora (-merge=1)
# The library is rebuilt with the fuzzing compiler into its own object set, so the fuzz
# builds never disturb $(BUILD)/rel or $(BUILD)/asan. FUZZ_CC/FUZZ_CFLAGS/FUZZ_ENGINE let
# fuzz/oss-fuzz/build.sh substitute OSS-Fuzz's $CC/$CFLAGS/$LIB_FUZZING_ENGINE.

FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_CC ?= clang
# UBSan without its alignment and pointer-overflow checks, as OSS-Fuzz builds it: with
# comparison tracing on, each of those checks calls a hook on nearly every memory access
# and pointer step, which took about a quarter of the virtqueue targets' time. The gcc
# reproducers that replay every corpus in `make test` keep the full -fsanitize=undefined.
FUZZ_SAN ?= -fsanitize=address,undefined -fno-sanitize=alignment,pointer-overflow \
	-fno-sanitize-recover=undefined
# Code that gets no coverage instrumentation (why: the file's comments).
FUZZ_COV_IGNORE ?= -fsanitize-coverage-ignorelist=fuzz/coverage-ignore.txt
FUZZ_CFLAGS ?= -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) $(FUZZ_COV_IGNORE)
FUZZ_ENGINE ?= -fsanitize=fuzzer
FUZZ_OUT ?= $(BUILD)/fuzz
FUZZ_AFL_CC ?= afl-clang-fast
FUZZ_LD ?= $(FUZZ_CC)
# Support code the targets may use besides the library (the driver-less virtio driver).
FUZZ_SUPPORT_SRCS := tests/mock_virtio.c
# Library objects come from other people's files: gcc -Werror is their gate, so a clang-only
# warning there must not stop the fuzz build. Our own files build with -Werror.
FUZZ_LIB_FLAGS = $(CSTD) -Wall -Wextra $(INCLUDES) $(PKG_CFLAGS) -DVMLAB_VERSION='"$(VERSION)"' \
	-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -MMD -MP
FUZZ_OWN_FLAGS = $(FUZZ_LIB_FLAGS) -Werror

.PHONY: fuzz fuzz-afl fuzz-repro fuzz-run fuzz-smoke fuzz-merge FORCE
FORCE:

# $(1) object dir, $(2) output dir, $(3) compiler, $(4) compile flags, $(5) link/engine flags,
# $(6) linker driver
define fuzz_variant
# The compiler and flags the objects were built with: rewritten only when they change, so
# a changed FUZZ_SAN or FUZZ_CFLAGS rebuilds the objects instead of linking stale ones.
$(1)/flags.stamp: FORCE
	@mkdir -p $$(@D)
	@printf '%s\n' '$$(subst ','\'',$(3) $(4))' >$$@.new
	@if cmp -s $$@.new $$@; then rm -f $$@.new; else mv $$@.new $$@; fi

$(1)/%.o: %.c $(1)/flags.stamp | $(GEN_HDRS)
	@mkdir -p $$(dir $$@)
	$(3) $$(FUZZ_LIB_FLAGS) $(4) -fsanitize=fuzzer-no-link -c $$< -o $$@

$(1)/libvmlab-fuzz.a: $$(patsubst %.c,$(1)/%.o,$$(LIB_SRCS) $$(FUZZ_SUPPORT_SRCS))
	@rm -f $$@
	ar rcs $$@ $$^

$(1)/own/fuzz_%.o: fuzz/fuzz_%.c $(1)/flags.stamp | $(GEN_HDRS)
	@mkdir -p $$(dir $$@)
	$(3) $$(FUZZ_OWN_FLAGS) $(4) -fsanitize=fuzzer-no-link -c $$< -o $$@

$(2)/%: $(1)/own/fuzz_%.o $(1)/libvmlab-fuzz.a
	@mkdir -p $$(dir $$@)
	$(6) $(4) $(5) -o $$@ $$^ $$(PKG_LIBS) $$(FUZZ_LDLIBS)
endef

$(eval $(call fuzz_variant,$(BUILD)/fuzzobj,$(FUZZ_OUT),$(FUZZ_CC),$(FUZZ_CFLAGS),$(FUZZ_ENGINE),$(FUZZ_LD)))
$(eval $(call fuzz_variant,$(BUILD)/aflobj,$(BUILD)/fuzz-afl,$(FUZZ_AFL_CC),-O1 -g $(FUZZ_SAN),-fsanitize=fuzzer,$(FUZZ_AFL_CC)))

fuzz: $(addprefix $(FUZZ_OUT)/,$(FUZZ_NAMES))
fuzz-afl: $(addprefix $(BUILD)/fuzz-afl/,$(FUZZ_NAMES))

# The reproducer: gcc, the ASan/UBSan library the unit tests use, no engine.
$(BUILD)/fuzz-repro/obj/%.o: fuzz/%.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_ASAN) -c $< -o $@

$(foreach n,$(FUZZ_NAMES),$(eval \
$(BUILD)/fuzz-repro/$(n): $(BUILD)/fuzz-repro/obj/fuzz_$(n).o $(BUILD)/fuzz-repro/obj/reproduce_main.o \
	$(patsubst %.c,$(BUILD)/asan/%.o,$(FUZZ_SUPPORT_SRCS)) $(BUILD)/asan/libvmlab.a ; \
	$$(CC) $$(CFLAGS_ASAN) -o $$@ $$^ $$(PKG_LIBS)))

fuzz-repro: $(addprefix $(BUILD)/fuzz-repro/,$(FUZZ_NAMES))
# `make test` replays the corpora with these (scripts/test-parts.d/fuzz-corpora.sh).
test-build: fuzz-repro

fuzz-run: $(if $(TARGET),$(FUZZ_OUT)/$(TARGET) $(BUILD)/fuzz-repro/$(TARGET))
	@test -n "$(TARGET)" || { echo "usage: make fuzz-run TARGET=<$(FUZZ_NAMES)> [TIME=s]"; exit 2; }
	BUILD=$(BUILD) FUZZ_FORK=$(FUZZ_FORK) fuzz/run.sh $(TARGET) $(or $(TIME),60)

fuzz-smoke: fuzz fuzz-repro
	@BUILD=$(BUILD) FUZZ_FORK=$(FUZZ_FORK) fuzz/smoke.sh $(or $(TIME),20) $(FUZZ_NAMES)

fuzz-merge: $(if $(TARGET),$(FUZZ_OUT)/$(TARGET),fuzz)
	BUILD=$(BUILD) fuzz/merge.sh $(or $(TARGET),$(FUZZ_NAMES))

.PRECIOUS: $(BUILD)/fuzzobj/own/%.o $(BUILD)/aflobj/own/%.o $(BUILD)/fuzz-repro/obj/%.o
