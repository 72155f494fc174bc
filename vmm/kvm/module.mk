# KVM backend extras: `make test-kvm` runs the KVM tests directly when /dev/kvm opens, or
# inside a QEMU TCG guest with nested KVM (KVM_VIA_QEMU=1 forces that path).
# vmm/kvm/*.c itself is part of libvmlab.a (top Makefile).
.PHONY: test-kvm bench-kvm
test-kvm: $(BUILD)/tests/test_kvm $(BUILD)/tests/test_loader_linux $(BUILD)/asan/vmlab $(BUILD)/vmlab \
		$(BUILD)/kvm/linux-initramfs.cpio.gz guests
	@BUILD=$(BUILD) ./scripts/test-kvm.sh

# Figures (not part of make test): vmm/kvm/nested/bench.sh in the nested VM of test-kvm.sh.
bench-kvm: $(BUILD)/tests/test_kvm $(BUILD)/asan/vmlab $(BUILD)/vmlab $(BUILD)/vmlab-slirp \
		$(BUILD)/kvm/vmlab-bench-peer guests
	@BUILD=$(BUILD) KVM_VIA_QEMU=1 KVM_BENCH=1 ./scripts/test-kvm.sh

# The host sides of the net and vsock benchmarks in the nested VM (no python there).
$(BUILD)/kvm/vmlab-bench-peer: vmm/kvm/nested/bench_peer.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(LINUX_PROG_CFLAGS) -o $@ $<

# The busybox initramfs for Linux guests (tests/cli/kvm_linux.sh: `vmlab run --kernel`);
# `make test` builds it too, so the Linux tests never skip for want of it.
test-build: $(BUILD)/kvm/linux-initramfs.cpio.gz
$(BUILD)/kvm/linux-initramfs.cpio.gz: vmm/kvm/linux/init vmm/kvm/linux/mkinitramfs.sh \
		vmm/kvm/linux/udhcpc.script vmm/kvm/linux/vmlab-net $(LINUX_PROGS)
	@mkdir -p $(dir $@)
	INITRAMFS_PROGS="$(LINUX_PROGS)" vmm/kvm/linux/mkinitramfs.sh $@

# The arm64 KVM backend under nested KVM (scripts/test-kvm-arm64.sh): cross-builds the
# static arm64 vmlab and guest programs (make ARCH=arm64), boots them in qemu-system-aarch64
# TCG with Debian's arm64 kernel, and compares with the x86 programs on the software CPU.
.PHONY: test-kvm-arm64
test-kvm-arm64: $(BUILD)/vmlab guests
	@$(MAKE) --no-print-directory ARCH=arm64 BUILD=$(BUILD) all
	@BUILD=$(BUILD) ./scripts/test-kvm-arm64.sh

# Figures (not part of make test or make bench: the QEMU download and TCG boot take a
# minute or two): boot-to-exit on vmlab vs QEMU -accel kvm inside the nested arm64 VM.
.PHONY: bench-kvm-arm64
bench-kvm-arm64: $(BUILD)/vmlab guests
	@$(MAKE) --no-print-directory ARCH=arm64 BUILD=$(BUILD) all
	@BUILD=$(BUILD) KVM_ARM64_BENCH=1 KVM_ARM64_TIMEOUT=900 ./scripts/test-kvm-arm64.sh
