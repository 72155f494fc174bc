# Reports (issue #9): `make report` and `make coverage`. Output: reports/out/ (git-ignored).
#   make report [RESULTS=FILE [KEEP=DIR]] [BENCH=FILE (default reports/bench.json)]
#       reports/out/index.html: scenario table, perf samples vs baseline, reports/bench.json
#       figures, trace timelines (Chrome JSON for ui.perfetto.dev), coverage summary.
#       Without RESULTS= it runs every scenario itself (--results/--keep under $(BUILD)/report).
#   make coverage
#       gcc --coverage build in $(BUILD)/cov, runs unit + CLI tests + scenarios against it,
#       lcov with branch coverage -> reports/out/coverage/ (HTML), $(BUILD)/coverage/summary.json,
#       and a per-directory table on stdout.
REPORT_DIR = $(BUILD)/report
REPORT_OUT := reports/out
COV_BUILD = $(BUILD)/cov
COV_FLAGS := -O0 -g --coverage -fsanitize=address -fno-omit-frame-pointer
COV_JOBS ?= 2

report: $(BUILD)/vmlab $(if $(RESULTS),,guests)
ifeq ($(RESULTS),)
	@rm -rf $(REPORT_DIR)/keep; mkdir -p $(REPORT_DIR)
	-harness/vmlab-scenarios --build $(BUILD) run --jobs 2 --results $(REPORT_DIR)/results.json \
		--keep $(abspath $(REPORT_DIR)/keep)
endif
	$(PYTHON) reports/make_report.py --results $(or $(RESULTS),$(REPORT_DIR)/results.json) \
		$(if $(RESULTS),$(if $(KEEP),--keep $(KEEP)),--keep $(REPORT_DIR)/keep) \
		--bench $(or $(BENCH),reports/bench.json) --vmlab $(BUILD)/vmlab --coverage $(BUILD)/coverage --out $(REPORT_OUT)

# The tests link with CFLAGS_ASAN and the binaries with CFLAGS_REL, so both get --coverage
# (compile and link). Only the ASan-flavoured tree is built; $(COV_BUILD)/vmlab links to it.
# ASan stays (tests and fuzz reproducers use its interface, e.g. __sanitizer_set_death_callback;
# its checks are added after gcov's instrumentation, so they add no branches); UBSan goes
# (its checks would count as never-taken branches). The tree also builds warning-free at -O0.
coverage:
	@# make does not track flags: objects built with other COV_FLAGS would mix in.
	@if [ "$$(cat $(COV_BUILD)/flags 2>/dev/null)" != "$(COV_FLAGS)" ]; then \
		rm -rf $(COV_BUILD); mkdir -p $(COV_BUILD); echo "$(COV_FLAGS)" >$(COV_BUILD)/flags; fi
	$(MAKE) --no-print-directory -j$(COV_JOBS) BUILD=$(COV_BUILD) CFLAGS_REL="$(COV_FLAGS)" \
		CFLAGS_ASAN="$(COV_FLAGS)" $(COV_BUILD)/asan/vmlab test-build guests
	ln -sfn asan/vmlab $(COV_BUILD)/vmlab
	BUILD=$(BUILD) COV_BUILD=$(COV_BUILD) COV_OUT=$(REPORT_OUT)/coverage reports/coverage.sh
