/* The arm64 parts of the KVM backend: the in-kernel vGICv3 (vGICv2 where the host has no
 * v3), the vCPU (KVM_ARM_PREFERRED_TARGET + KVM_ARM_VCPU_INIT with PSCI 0.2, so the guest's
 * SYSTEM_OFF / SYSTEM_RESET come back as KVM_EXIT_SYSTEM_EVENT), the in-kernel arch timer
 * (part of every arm64 vCPU), and the entry state of CPU_BOOT_ARM64. The vGIC is created
 * before the vCPU and initialised after it, as the kernel's vgic-v3 API asks. */
#include "kvm_internal.h"

#if VMLAB_HAVE_KVM && defined(__aarch64__)
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/guest_mem.h"

const char *const kvm__arch_name = "arm64";

const struct kvm_required_cap kvm__arch_required_caps[] = {
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
    { KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG" },
    { KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL" },
    { KVM_CAP_ARM_PSCI_0_2, "KVM_CAP_ARM_PSCI_0_2" },
    { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
    { 0, NULL },
};

/* PSTATE at entry: EL1 with SP_EL1, debug, SError, IRQ and FIQ masked (booting.rst). */
#define PSTATE_EL1H_DAIF 0x3c5ULL

#define CORE_REG(field) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
                         (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))

static int gic_attr(struct cpu *cpu, uint32_t group, uint64_t attr, void *addr)
{
    struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)addr };
    return ioctl(cpu->gic_fd, KVM_SET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

static int gic_create(struct cpu *cpu, uint32_t type)
{
    struct kvm_create_device d = { .type = type };
    if (ioctl(cpu->vm_fd, KVM_CREATE_DEVICE, &d) < 0)
        return -errno;
    cpu->gic_fd = (int)d.fd;
    return 0;
}

/* vGICv3 with its distributor and redistributor at the memmap addresses; v2 (distributor
 * and CPU interface) when the host's GIC cannot present a v3 one. */
int kvm__arch_vm_init(struct cpu *cpu)
{
    uint64_t dist = MEMMAP_ARM64_GICD_BASE, redist = MEMMAP_ARM64_GICR_BASE;
    uint64_t cpuif = MEMMAP_ARM64_GICC_BASE;
    int r;

    if (gic_create(cpu, KVM_DEV_TYPE_ARM_VGIC_V3) == 0) {
        cpu->gic_version = 3;
        if ((r = gic_attr(cpu, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist)) ||
            (r = gic_attr(cpu, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist)))
            return r;
        return 0;
    }
    if ((r = gic_create(cpu, KVM_DEV_TYPE_ARM_VGIC_V2)) < 0)
        return r;
    cpu->gic_version = 2;
    if ((r = gic_attr(cpu, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, &dist)) ||
        (r = gic_attr(cpu, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, &cpuif)))
        return r;
    return 0;
}

int kvm__arch_vcpu_init(struct cpu *cpu)
{
    struct kvm_vcpu_init init = { 0 };
    uint32_t nr_irqs = MEMMAP_ARM64_GIC_NR_IRQS;
    int r;

    if (ioctl(cpu->vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0)
        return -errno;
    init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
    if (ioctl(cpu->vcpu_fd, KVM_ARM_VCPU_INIT, &init) < 0)
        return -errno;
    if ((r = gic_attr(cpu, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs)) ||
        (r = gic_attr(cpu, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL)))
        return r;
    return 0;
}

/* The generic timer's rate, which the guest reads from CNTFRQ_EL0 as the host does. */
uint64_t kvm__arch_tsc_khz(struct cpu *cpu)
{
    uint64_t hz;
    (void)cpu;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
    return hz / 1000;
}

static int set_reg(struct cpu *cpu, uint64_t id, uint64_t value)
{
    struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&value };
    return ioctl(cpu->vcpu_fd, KVM_SET_ONE_REG, &r) < 0 ? -errno : 0;
}


static int get_reg(struct cpu *cpu, uint64_t id, uint64_t *value)
{
    struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)value };
    return ioctl(cpu->vcpu_fd, KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

#define INSN_WFI        0xd503207fu
#define PSTATE_I        (1ULL << 7)
#define TIMER_ENABLE    1ULL
#define TIMER_IMASK     2ULL

/* Read through the host mapping, not guest_mem_read: a trace's tap records those reads as
 * the guest's DMA. */
static int insn_at(struct cpu *cpu, uint64_t gpa, uint32_t want)
{
    const void *p = guest_mem_host(cpu->env->mem, gpa, sizeof(uint32_t));
    uint32_t insn;
    if (!p)
        return 0;
    memcpy(&insn, p, sizeof(insn));
    return insn == want;
}

/* A WFI that a kick ended: the kernel steps the PC past it (and, since Linux 5.13, commits
 * that step before KVM_RUN returns), so the WFI is at PC - 4; at PC on kernels that leave
 * the step for the next entry. Guest programs and Linux run with an identity map or from
 * RAM the PC names physically; a PC that is not a RAM address never matches. */
int kvm__arch_in_wfi(struct cpu *cpu, int *irqs_masked)
{
    uint64_t pc, pstate;

    if (get_reg(cpu, CORE_REG(regs.pc), &pc) || get_reg(cpu, CORE_REG(regs.pstate), &pstate))
        return 0;
    if (!(pc >= 4 && insn_at(cpu, pc - 4, INSN_WFI)) && !insn_at(cpu, pc, INSN_WFI))
        return 0;
    *irqs_masked = (pstate & PSTATE_I) != 0;
    return 1;
}

static int dist_reg(struct cpu *cpu, uint32_t offset, uint32_t *v)
{
    struct kvm_device_attr a = {
        .group = KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
        .attr = offset,         /* v2: CPU 0 in bits 39:32 for the banked registers */
        .addr = (uint64_t)(uintptr_t)v,
    };
    return ioctl(cpu->gic_fd, KVM_GET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

#define GICD_ISENABLER  0x100
#define GICD_ICFGR      0xc00

int kvm__arch_spi_state(struct cpu *cpu, unsigned gsi, int *level_triggered, int *enabled)
{
    unsigned intid = 32 + gsi;
    uint32_t cfg, en;
    int r;

    if ((r = dist_reg(cpu, GICD_ICFGR + 4 * (intid / 16), &cfg)) ||
        (r = dist_reg(cpu, GICD_ISENABLER + 4 * (intid / 32), &en)))
        return r;
    *level_triggered = !(cfg & (2u << (2 * (intid % 16))));    /* 0: level, 1: edge */
    *enabled = (en >> (intid % 32)) & 1;
    return 0;
}

/* The vGIC's enable bit of private interrupt `intid` (0..31) for vCPU 0: the redistributor's
 * ISENABLER0 (v3, SGI frame at 64 KiB, MPIDR 0 in attr bits 63:32) or the distributor's
 * banked ISENABLER0 (v2, CPU 0). -errno if it cannot be read. */
static int ppi_enabled(struct cpu *cpu, unsigned intid)
{
    uint32_t v = 0;
    struct kvm_device_attr a = {
        .group = cpu->gic_version == 3 ? KVM_DEV_ARM_VGIC_GRP_REDIST_REGS
                                       : KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
        .attr = cpu->gic_version == 3 ? 0x10100 : 0x100,
        .addr = (uint64_t)(uintptr_t)&v,
    };
    if (ioctl(cpu->gic_fd, KVM_GET_DEVICE_ATTR, &a) < 0)
        return -errno;
    return (v >> intid) & 1;
}

#define PPI_PTIMER 30

/* The EL1 virtual and physical timers (the kernel emulates both): one enabled and not
 * masked will interrupt, and a WFI wakes for it. Kernels before 6.4 (Debian 12's 6.1) do
 * not give userspace the physical timer's registers (ENOENT): it then counts as armed
 * unless its PPI is disabled at the vGIC, where it can wake nothing. Anything else that
 * cannot be read counts as armed: never call a guest hung on a guess. */
int kvm__arch_timer_armed(struct cpu *cpu)
{
    static const uint64_t ctl[] = { KVM_REG_ARM_TIMER_CTL, KVM_REG_ARM_PTIMER_CTL };
    for (unsigned i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
        uint64_t v;
        int r = get_reg(cpu, ctl[i], &v);
        if (r == -ENOENT && ctl[i] == KVM_REG_ARM_PTIMER_CTL) {
            if (ppi_enabled(cpu, PPI_PTIMER) != 0)
                return 1;
            continue;
        }
        if (r || ((v & TIMER_ENABLE) && !(v & TIMER_IMASK)))
            return 1;
    }
    return 0;
}

uint64_t kvm__arch_pc(struct cpu *cpu)
{
    uint64_t pc = 0;
    return get_reg(cpu, CORE_REG(regs.pc), &pc) ? 0 : pc;
}

int kvm__boot(struct cpu *cpu, const struct cpu_boot *boot)
{
    int r;

    if (!cpu || !boot || boot->mode != CPU_BOOT_ARM64)
        return -EINVAL;
    if ((r = set_reg(cpu, CORE_REG(regs.pstate), PSTATE_EL1H_DAIF)) ||
        (r = set_reg(cpu, CORE_REG(regs.regs[0]), boot->arg)) ||
        (r = set_reg(cpu, CORE_REG(regs.regs[1]), 0)) ||
        (r = set_reg(cpu, CORE_REG(regs.regs[2]), 0)) ||
        (r = set_reg(cpu, CORE_REG(regs.regs[3]), 0)) ||
        (r = set_reg(cpu, CORE_REG(regs.pc), boot->entry)))
        return r;
    return 0;
}
#endif
