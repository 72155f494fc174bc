# Linux guest test programs: each guest/linux/NAME.c -> $(BUILD)/guest/linux/vmlab-NAME, a
# static host binary (glibc's libc.a) that the initramfs builder puts in /bin.
LINUX_PROG_CFLAGS := $(CSTD) $(WARN) -O2 -static -s
LINUX_PROGS := $(patsubst guest/linux/%.c,$(BUILD)/guest/linux/vmlab-%,$(wildcard guest/linux/*.c))

$(BUILD)/guest/linux/vmlab-%: guest/linux/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(LINUX_PROG_CFLAGS) -o $@ $< -lz

guests: $(LINUX_PROGS)
