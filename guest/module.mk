# Guest programs: freestanding x86_64 PVH ELF files built by the host gcc.
# guest/rt/*.{c,S} -> $(BUILD)/guest/librt.a; guest/virtio/*.c -> $(BUILD)/guest/libvirtio.a;
# each guest/progs/NAME.c -> $(BUILD)/guest/NAME.elf linked with both and Debian's libfdt.a.

GUEST_CC := gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fno-builtin -mcmodel=small -Iguest/rt -Iguest/virtio -I. -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,guest/rt/linker.ld -Wl,--build-id=none \
	-Wl,-z,max-page-size=0x1000 -Wl,--no-warn-rwx-segments
GUEST_LIBFDT := /usr/lib/x86_64-linux-gnu/libfdt.a

GUEST_RT_SRCS := $(wildcard guest/rt/*.c) $(filter-out guest/rt/boot.S,$(wildcard guest/rt/*.S))
GUEST_RT_OBJS := $(patsubst guest/%,$(BUILD)/guest/obj/%.o,$(basename $(GUEST_RT_SRCS)))
GUEST_BOOT_OBJ := $(BUILD)/guest/obj/rt/boot.o
GUEST_VIRTIO_SRCS := $(wildcard guest/virtio/*.c)
GUEST_VIRTIO_OBJS := $(patsubst guest/%.c,$(BUILD)/guest/obj/%.o,$(GUEST_VIRTIO_SRCS))
GUEST_VIRTIO_LIB := $(if $(GUEST_VIRTIO_SRCS),$(BUILD)/guest/libvirtio.a)
GUEST_PROGS := $(basename $(notdir $(wildcard guest/progs/*.c)))
GUEST_ELFS := $(patsubst %,$(BUILD)/guest/%.elf,$(GUEST_PROGS))

guests: $(GUEST_ELFS)

# keep program objects (make would delete them as intermediates of the .elf rule)
.SECONDARY: $(GUEST_BOOT_OBJ) $(patsubst %,$(BUILD)/guest/obj/progs/%.o,$(GUEST_PROGS))

$(BUILD)/guest/obj/%.o: guest/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/guest/obj/%.o: guest/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(BUILD)/guest/librt.a: $(GUEST_RT_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/guest/libvirtio.a: $(GUEST_VIRTIO_OBJS)
	@rm -f $@
	ar rcs $@ $^

# boot.o goes in as an object: nothing references the entry point, so an archive would drop it.
$(BUILD)/guest/%.elf: $(BUILD)/guest/obj/progs/%.o $(GUEST_BOOT_OBJ) $(BUILD)/guest/librt.a $(GUEST_VIRTIO_LIB) guest/rt/linker.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $(GUEST_BOOT_OBJ) $< -Wl,--start-group \
		$(GUEST_VIRTIO_LIB) $(BUILD)/guest/librt.a $(GUEST_LIBFDT) -Wl,--end-group
