# Guest programs: freestanding x86_64 PVH ELF files built by the host gcc.
# guest/rt/*.{c,S} -> $(BUILD)/guest/librt.a; guest/virtio/*.c -> $(BUILD)/guest/libvirtio.a;
# each guest/progs/NAME.c -> $(BUILD)/guest/NAME.elf linked with both and Debian's libfdt.a.

ifeq ($(ARCH),arm64)
# arm64 guest programs (make ARCH=arm64): the same sources where the logic is the same; the
# runtime's x86 parts (PVH boot, IDT, APICs) give way to guest/rt/arm64/ (EL1 entry with the
# FDT in x0, MMU on, vectors, GICv3). Programs built: those without x86 instructions or
# x86 interrupt controllers (ARM64_GUEST_PROGS).
GUEST_CC := aarch64-linux-gnu-gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
	-mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fno-builtin -mcmodel=small -Iguest/rt -Iguest/virtio -I. -MMD -MP
GUEST_LDSCRIPT := guest/rt/arm64/linker.ld
GUEST_LIBFDT := $(ARM64_FDT_A)
GUEST_RT_SRCS := $(filter-out guest/rt/apic.c guest/rt/idt.c,$(wildcard guest/rt/*.c)) \
	$(wildcard guest/rt/arm64/*.c)
GUEST_BOOT_OBJ := $(BUILD)/guest/obj/rt/arm64/boot.o
ARM64_GUEST_PROGS := hello blk console rng memtest latency timer uartirq idle exception fault \
	vsock_echo vsock_client balloon input net
GUEST_PROGS := $(ARM64_GUEST_PROGS)
else
GUEST_CC := gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fno-builtin -mcmodel=small -Iguest/rt -Iguest/virtio -I. -MMD -MP
GUEST_LDSCRIPT := guest/rt/linker.ld
GUEST_LIBFDT := /usr/lib/x86_64-linux-gnu/libfdt.a
GUEST_RT_SRCS := $(wildcard guest/rt/*.c) $(filter-out guest/rt/boot.S,$(wildcard guest/rt/*.S))
GUEST_BOOT_OBJ := $(BUILD)/guest/obj/rt/boot.o
GUEST_PROGS := $(basename $(notdir $(wildcard guest/progs/*.c)))
endif
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(GUEST_LDSCRIPT) -Wl,--build-id=none \
	-Wl,-z,max-page-size=0x1000 -Wl,--no-warn-rwx-segments

GUEST_RT_OBJS := $(patsubst guest/%,$(BUILD)/guest/obj/%.o,$(basename $(GUEST_RT_SRCS)))
GUEST_VIRTIO_SRCS := $(filter-out $(GUEST_VIRTIO_EXCLUDE),$(wildcard guest/virtio/*.c))
GUEST_VIRTIO_OBJS := $(patsubst guest/%.c,$(BUILD)/guest/obj/%.o,$(GUEST_VIRTIO_SRCS))
GUEST_VIRTIO_LIB := $(if $(GUEST_VIRTIO_SRCS),$(BUILD)/guest/libvirtio.a)
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
$(BUILD)/guest/%.elf: $(BUILD)/guest/obj/progs/%.o $(GUEST_BOOT_OBJ) $(BUILD)/guest/librt.a $(GUEST_VIRTIO_LIB) $(GUEST_LDSCRIPT) $(GUEST_LIBFDT)
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $(GUEST_BOOT_OBJ) $< -Wl,--start-group \
		$(GUEST_VIRTIO_LIB) $(BUILD)/guest/librt.a $(GUEST_LIBFDT) -Wl,--end-group
