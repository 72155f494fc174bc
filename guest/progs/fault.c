/* Misbehaves on purpose, so tests can check that vmlab stops the VM with the right
 * diagnostic and exit status instead of crashing: mode=unmapped (read guest-physical
 * memory that is neither RAM nor a device), mode=triple (x86: no usable IDT, then a fault),
 * mode=hlt (halt with interrupts off), mode=idle (halt with interrupts on and nothing
 * armed that could ever interrupt), mode=loop (spin forever, for --max-insns),
 * mode=garbage (write junk to every virtio-mmio window and the serial/exit-free ports). */
#include "rt.h"

#if defined(__aarch64__)
/* arm64: WFI with everything masked, in a loop, since a WFI may end without a cause (a
 * VMM's kick does that); WFI with IRQs unmasked; no port space. There is no triple fault: a
 * fault with no usable vectors loops inside the guest, where no VMM sees it, so that mode
 * is x86's alone. */
#define FAULT_TRIPLE() printf("fault: mode=triple is x86 only\n")
#define FAULT_HLT() __asm__ volatile("msr daifset, #0xf\n1: wfi\n b 1b")
#define FAULT_IDLE() __asm__ volatile("msr daifclr, #2; wfi")
#define FAULT_PORTS() ((void)0)
#else
#define FAULT_TRIPLE() __asm__ volatile("lidt %0; ud2" : : "m"(((struct { uint16_t limit; \
    uint64_t base; } __attribute__((packed))){ 0, 0 })))
#define FAULT_HLT() __asm__ volatile("cli; hlt")
#define FAULT_IDLE() __asm__ volatile("sti; hlt")
#define FAULT_PORTS() for (uint16_t port = 0x20; port < 0xf0; port++) outb(port, 0xa5)
#endif

int main(int argc, char **argv)
{
    char mode[16] = "";

    (void)argc;
    (void)argv;
    rt_cmdline_get("mode", mode, sizeof(mode));
    printf("fault: mode=%s\n", mode);
    if (!strcmp(mode, "unmapped")) {
        /* 0xc0000000 is identity-mapped by the runtime but lies past RAM (--mem <= 3G)
         * and below the MMIO hole. */
        volatile uint32_t v = mmio_read32(0xc0000000ULL);
        printf("fault: read %#x\n", v);
    } else if (!strcmp(mode, "triple")) {
        FAULT_TRIPLE();
    } else if (!strcmp(mode, "hlt")) {
        FAULT_HLT();
    } else if (!strcmp(mode, "idle")) {
        for (;;)
            FAULT_IDLE();
    } else if (!strcmp(mode, "loop")) {
        for (;;)
            rt_pause();
    } else if (!strcmp(mode, "garbage")) {
        for (uint64_t base = 0xd0000000ULL; base < 0xd0010000ULL; base += 0x1000)
            for (uint64_t off = 0; off < 0x200; off += 4)
                mmio_write32(base + off, 0xdeadbeef ^ (uint32_t)off);
        FAULT_PORTS();
        printf("fault: garbage written, still running\n");
        return 0;
    }
    printf("fault: unknown or survived mode '%s'\n", mode);
    return 3;
}
