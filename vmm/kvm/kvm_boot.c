/* Entry state for the two boot protocols.
 * PVH32: flat 32-bit protected mode, paging off (Xen PVH entry; EBX = hvm_start_info).
 * LINUX64: 64-bit long mode on identity page tables the backend writes into low RAM at
 * the KVM_BOOT_* addresses (Linux x86 boot protocol, "64-bit boot": __BOOT_CS 0x10,
 * __BOOT_DS 0x18, RSI = boot_params). */
#include "kvm_internal.h"

#if VMLAB_HAVE_KVM && defined(__x86_64__)
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define CR0_PE  0x1ULL
#define CR0_ET  0x10ULL
#define CR0_PG  0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, int code64)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = selector,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = code64 ? 0 : 1,
        .s = 1,
        .l = code64 ? 1 : 0,
        .g = 1,
    };
}

/* Writes the GDT and the page tables mapping 0..4 GiB 1:1 with 2 MiB pages. */
static int write_long_mode_tables(struct cpu *cpu)
{
    struct guest_mem *mem = cpu->env->mem;
    uint64_t *gdt = guest_mem_host(mem, KVM_BOOT_GDT_ADDR, 4 * 8);
    uint64_t *pml4 = guest_mem_host(mem, KVM_BOOT_PML4_ADDR, 0x1000);
    uint64_t *pdpt = guest_mem_host(mem, KVM_BOOT_PDPT_ADDR, 0x1000);
    uint64_t *pd = guest_mem_host(mem, KVM_BOOT_PD_ADDR, 4 * 0x1000);
    if (!gdt || !pml4 || !pdpt || !pd)
        return -EFAULT;
    gdt[0] = 0;
    gdt[1] = 0;
    gdt[2] = 0x00af9b000000ffffULL;     /* 0x10: 64-bit code, DPL 0 */
    gdt[3] = 0x00cf93000000ffffULL;     /* 0x18: data, 4 GiB */
    memset(pml4, 0, 0x1000);
    memset(pdpt, 0, 0x1000);
    pml4[0] = KVM_BOOT_PDPT_ADDR | 0x3;                 /* present, writable */
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (KVM_BOOT_PD_ADDR + i * 0x1000) | 0x3;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83;                       /* present, writable, 2 MiB page */
    return 0;
}

int kvm__boot(struct cpu *cpu, const struct cpu_boot *boot)
{
    struct kvm_sregs s;
    struct kvm_regs regs;

    if (!cpu || !boot)
        return -EINVAL;
    if (boot->mode != CPU_BOOT_PVH32 && boot->mode != CPU_BOOT_LINUX64)
        return -EINVAL;
    if (boot->mode == CPU_BOOT_PVH32 && (boot->entry > 0xffffffffULL || boot->arg > 0xffffffffULL))
        return -EINVAL;
    if (ioctl(cpu->vcpu_fd, KVM_GET_SREGS, &s) < 0)
        return -errno;

    /* TR must look like a busy TSS for VM entry to accept the state (VMX checks it). */
    s.tr = (struct kvm_segment){ .limit = 0x67, .type = 11, .present = 1 };
    s.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
    s.idt.base = 0;
    s.idt.limit = 0;
    memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));

    if (boot->mode == CPU_BOOT_PVH32) {
        s.cs = flat_segment(0x8, 0xb, 0);
        s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(0x10, 0x3, 0);
        /* PVH says GDTR is undefined until the guest loads its own. */
        s.gdt.base = 0;
        s.gdt.limit = 0;
        s.cr0 = CR0_PE | CR0_ET;
        s.cr3 = 0;
        s.cr4 = 0;
        s.efer = 0;
    } else {
        int r = write_long_mode_tables(cpu);
        if (r < 0)
            return r;
        s.cs = flat_segment(0x10, 0xb, 1);
        s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(0x18, 0x3, 0);
        s.gdt.base = KVM_BOOT_GDT_ADDR;
        s.gdt.limit = 4 * 8 - 1;
        s.cr0 = CR0_PE | CR0_ET | CR0_PG;
        s.cr3 = KVM_BOOT_PML4_ADDR;
        s.cr4 = CR4_PAE;
        s.efer = EFER_LME | EFER_LMA;
    }
    if (ioctl(cpu->vcpu_fd, KVM_SET_SREGS, &s) < 0)
        return -errno;

    memset(&regs, 0, sizeof(regs));
    regs.rflags = 0x2;
    regs.rip = boot->entry;
    if (boot->mode == CPU_BOOT_PVH32)
        regs.rbx = boot->arg;
    else
        regs.rsi = boot->arg;
    if (ioctl(cpu->vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}
#endif
