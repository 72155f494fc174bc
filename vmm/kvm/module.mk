# KVM backend extras: `make test-kvm` runs the KVM tests directly when /dev/kvm opens, or
# inside a QEMU TCG guest with nested KVM (KVM_VIA_QEMU=1 forces that path).
# vmm/kvm/*.c itself is part of libvmlab.a (top Makefile).
.PHONY: test-kvm bench-kvm
test-kvm: $(BUILD)/tests/test_kvm $(BUILD)/tests/test_loader_linux $(BUILD)/asan/vmlab $(BUILD)/vmlab \
		$(BUILD)/kvm/kvm_linux_boot $(BUILD)/kvm/linux-initramfs.cpio.gz guests
	@BUILD=$(BUILD) ./scripts/test-kvm.sh

bench-kvm: $(BUILD)/vmlab guests
	@BUILD=$(BUILD) ./vmm/kvm/bench_kvm.sh

# A real kernel on the KVM backend without the machine model: loader + long-mode entry +
# backend (vmm/kvm/linux/kvm_linux_boot.c), and the busybox initramfs for Linux guests.
$(BUILD)/kvm/kvm_linux_boot: vmm/kvm/linux/kvm_linux_boot.c $(BUILD)/libvmlab.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_REL) -o $@ $< $(BUILD)/libvmlab.a $(PKG_LIBS)

$(BUILD)/kvm/linux-initramfs.cpio.gz: vmm/kvm/linux/init vmm/kvm/linux/mkinitramfs.sh
	@mkdir -p $(dir $@)
	vmm/kvm/linux/mkinitramfs.sh $@
