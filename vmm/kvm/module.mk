# KVM backend extras: `make test-kvm` runs the KVM tests directly when /dev/kvm opens, or
# inside a QEMU TCG guest with nested KVM (KVM_VIA_QEMU=1 forces that path).
# vmm/kvm/*.c itself is part of libvmlab.a (top Makefile).
.PHONY: test-kvm bench-kvm
test-kvm: $(BUILD)/tests/test_kvm $(BUILD)/asan/vmlab $(BUILD)/vmlab guests
	@BUILD=$(BUILD) ./scripts/test-kvm.sh

bench-kvm: $(BUILD)/vmlab guests
	@BUILD=$(BUILD) ./vmm/kvm/bench_kvm.sh
