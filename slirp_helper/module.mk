# vmlab-slirp: libslirp in a process of its own (slirp_helper/main.c says why), found by
# vmlab next to its own binary. Linked dynamically: Debian ships libslirp and glib only as
# shared libraries. Built -O2; the ASan build of vmlab uses this same helper.
SLIRP_HELPER_SRCS := slirp_helper/main.c slirp_helper/slirp_sandbox.c devices/net/slirp_proto.c \
                     devices/net/slirp_link.c
SLIRP_HELPER_OBJS := $(patsubst %.c,$(BUILD)/helper/%.o,$(SLIRP_HELPER_SRCS))

$(BUILD)/helper/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(INCLUDES) $(CFLAGS_REL) -MMD -MP -c $< -o $@

$(BUILD)/vmlab-slirp: $(SLIRP_HELPER_OBJS)
	$(CC) $(CFLAGS_REL) -o $@ $^ -lslirp -lseccomp

# Not in the arm64 cross build: its vmlab has no --net user (arch/arm64/arm64.mk).
ifneq ($(ARCH),arm64)
all: $(BUILD)/vmlab-slirp
test-build: $(BUILD)/vmlab-slirp
endif
