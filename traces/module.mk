# traces/: the trace benchmark and the checked-in golden traces.

# Every traces/*.c is compiled into libvmlab.a; bench_trace.c is a program, so its library
# copies are compiled empty.
$(BUILD)/rel/traces/bench_trace.o: CFLAGS_REL += -DVMLAB_IN_LIBRARY
$(BUILD)/asan/traces/bench_trace.o: CFLAGS_ASAN += -DVMLAB_IN_LIBRARY

# The benchmark also builds as $(BUILD)/bench/bench_trace through the top Makefile's rule.
$(BUILD)/bench_trace: traces/bench_trace.c $(BUILD)/libvmlab.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_REL) -o $@ $< $(BUILD)/libvmlab.a $(PKG_LIBS)

.PHONY: bench-trace
bench-trace: $(BUILD)/bench_trace
	$(BUILD)/bench_trace

# Re-record the checked-in golden traces (traces/golden/record.sh holds the recipes).
.PHONY: traces-golden
traces-golden: $(BUILD)/vmlab guests
	traces/golden/record.sh $(BUILD)/vmlab $(BUILD)/guest traces/golden
