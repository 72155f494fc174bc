# KVM backend extras: `make test-kvm` runs the KVM tests directly when /dev/kvm opens, or
# inside a QEMU TCG guest with nested KVM (KVM_VIA_QEMU=1 forces that path).
# vmm/kvm/*.c itself is part of libvmlab.a (top Makefile).
.PHONY: test-kvm bench-kvm
test-kvm: $(BUILD)/tests/test_kvm $(BUILD)/tests/test_loader_linux $(BUILD)/asan/vmlab $(BUILD)/vmlab \
		$(BUILD)/kvm/linux-initramfs.cpio.gz guests
	@BUILD=$(BUILD) ./scripts/test-kvm.sh

bench-kvm: $(BUILD)/vmlab guests
	@BUILD=$(BUILD) ./vmm/kvm/bench_kvm.sh

# The busybox initramfs for Linux guests (tests/cli/kvm_linux.sh: `vmlab run --kernel`);
# `make test` builds it too, so the Linux tests never skip for want of it.
test-build: $(BUILD)/kvm/linux-initramfs.cpio.gz
$(BUILD)/kvm/linux-initramfs.cpio.gz: vmm/kvm/linux/init vmm/kvm/linux/mkinitramfs.sh \
		vmm/kvm/linux/udhcpc.script vmm/kvm/linux/vmlab-net
	@mkdir -p $(dir $@)
	vmm/kvm/linux/mkinitramfs.sh $@
