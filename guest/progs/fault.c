/* Misbehaves on purpose, so tests can check that vmlab stops the VM with the right
 * diagnostic and exit status instead of crashing: mode=unmapped (read guest-physical
 * memory that is neither RAM nor a device), mode=triple (no usable IDT, then a fault),
 * mode=hlt (halt with interrupts off), mode=idle (halt with interrupts on and nothing
 * armed that could ever interrupt), mode=loop (spin forever, for --max-insns),
 * mode=garbage (write junk to every virtio-mmio window and the serial/exit-free ports). */
#include "rt.h"

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
        struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr = { 0, 0 };
        __asm__ volatile("lidt %0; ud2" : : "m"(idtr));
    } else if (!strcmp(mode, "hlt")) {
        __asm__ volatile("cli; hlt");
    } else if (!strcmp(mode, "idle")) {
        for (;;)
            __asm__ volatile("sti; hlt");
    } else if (!strcmp(mode, "loop")) {
        for (;;)
            __asm__ volatile("pause");
    } else if (!strcmp(mode, "garbage")) {
        for (uint64_t base = 0xd0000000ULL; base < 0xd0010000ULL; base += 0x1000)
            for (uint64_t off = 0; off < 0x200; off += 4)
                mmio_write32(base + off, 0xdeadbeef ^ (uint32_t)off);
        for (uint16_t port = 0x20; port < 0xf0; port++)
            outb(port, 0xa5);
        printf("fault: garbage written, still running\n");
        return 0;
    }
    printf("fault: unknown or survived mode '%s'\n", mode);
    return 3;
}
