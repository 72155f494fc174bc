/* The x86 parts of the KVM backend's create: Intel's real-mode helper pages, the in-kernel
 * irqchip (PIC + IOAPIC + LAPIC) with both PICs masked, CPUID, the TSC rate. */
#include "kvm_internal.h"

#if VMLAB_HAVE_KVM && defined(__x86_64__)
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

const char *const kvm__arch_name = "x86_64";

const struct kvm_required_cap kvm__arch_required_caps[] = {
    { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
    { KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
    { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
    { KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
    { KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
    { 0, NULL },
};

static int kvm_set_cpuid(struct cpu *cpu)
{
    int nent = 64;
    for (;;) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));
        if (!c)
            return -ENOMEM;
        c->nent = (uint32_t)nent;
        if (ioctl(cpu->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
            int e = errno;
            free(c);
            if (e == E2BIG && nent < 4096) {
                nent *= 2;
                continue;
            }
            return -e;
        }
        for (uint32_t i = 0; i < c->nent; i++) {
            struct kvm_cpuid_entry2 *e = &c->entries[i];
            if (e->function == 1) {
                e->ebx &= 0x00ffffffu;          /* initial APIC ID 0 */
                e->ecx |= 1u << 31;             /* running under a hypervisor */
            }
        }
        int r = ioctl(cpu->vcpu_fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
        free(c);
        return r;
    }
}

/* BIOS-like state: both PICs masked, so a line raised before the guest programs its
 * interrupt controllers never arrives as a stray ExtINT vector. Linux re-initialises
 * the PICs itself. */
static int kvm_mask_pics(struct cpu *cpu)
{
    for (uint32_t chip = KVM_IRQCHIP_PIC_MASTER; chip <= KVM_IRQCHIP_PIC_SLAVE; chip++) {
        struct kvm_irqchip ic = { .chip_id = chip };
        if (ioctl(cpu->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
            return -errno;
        ic.chip.pic.imr = 0xff;
        if (ioctl(cpu->vm_fd, KVM_SET_IRQCHIP, &ic) < 0)
            return -errno;
    }
    return 0;
}

int kvm__arch_vm_init(struct cpu *cpu)
{
    /* Intel's real-mode helpers live in the MMIO hole; they must exist before the vCPU. */
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    if (ioctl(cpu->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
        ioctl(cpu->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
        return -errno;
    if (ioctl(cpu->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
        return -errno;
    if (ioctl(cpu->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return -errno;
    return kvm_mask_pics(cpu);
}

int kvm__arch_vcpu_init(struct cpu *cpu)
{
    int sync = ioctl(cpu->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    cpu->sync_regs = sync > 0 && (sync & KVM_SYNC_X86_REGS);
    return kvm_set_cpuid(cpu);
}

/* The vCPU's TSC rate as KVM set it (the host's unless scaled); 0 if KVM cannot say. */
uint64_t kvm__arch_tsc_khz(struct cpu *cpu)
{
    int khz = ioctl(cpu->vcpu_fd, KVM_GET_TSC_KHZ, 0);
    return khz > 0 ? (uint64_t)khz : 0;
}

uint64_t kvm__arch_pc(struct cpu *cpu)
{
    struct kvm_regs regs;
    return ioctl(cpu->vcpu_fd, KVM_GET_REGS, &regs) == 0 ? regs.rip : 0;
}
#endif
