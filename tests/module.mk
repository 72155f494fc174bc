# Check suites: every tests/test_<name>.c becomes $(BUILD)/tests/test_<name>, built with
# ASan/UBSan against the ASan library. tests/*.c files not named test_* (the mock virtio
# driver and other shared helpers) are linked into every suite.
TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
TEST_SUPPORT_SRCS := $(filter-out tests/test_%.c,$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(TEST_SUPPORT_SRCS))
# Named only by the pattern rule below, they would be intermediate: make deleted them after
# each build and compiled them again on the next change.
.SECONDARY: $(TEST_SUPPORT_OBJS) $(patsubst %.c,$(BUILD)/asan/%.o,$(TEST_SRCS))

$(BUILD)/tests/test_%: $(BUILD)/asan/tests/test_%.o $(TEST_SUPPORT_OBJS) $(BUILD)/asan/libvmlab.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS)

.PHONY: test-build
test-build: $(TEST_BINS) $(BUILD)/asan/vmlab
