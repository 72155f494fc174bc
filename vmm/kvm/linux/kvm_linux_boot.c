/* kvm_linux_boot KERNEL INITRD CMDLINE [SECONDS]: boots a bzImage on the KVM backend with
 * the Linux loader and nothing else but the 8250 UART device at 0x3f8 / IRQ 4 (output to
 * stdout) and the i8042 reset line (port 0x64, value 0xfe): a check of the loader, the
 * long-mode entry, the in-kernel irqchip and the backend with a real kernel, independent
 * of the machine model in vm.c.
 * Exit status: 0 when the guest reset itself through the i8042 (reboot=k; how Linux
 * powers off without ACPI), 1 on a timeout or another stop, 2 on bad arguments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "vmm/cpu_backend.h"
#include "vmm/loader_linux.h"

static volatile int stop;
static int reset_seen;

static int kbd_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
    (void)o;
    (void)size;
    if (off == 4 && (v & 0xff) == 0xfe) {
        reset_seen = 1;
        stop = 1;
    }
    return 0;
}

static int kbd_read(void *o, uint64_t off, unsigned size, uint64_t *v)
{
    (void)o;
    (void)off;
    (void)size;
    *v = 0;                         /* status: input buffer empty, so the reset goes out */
    return 0;
}

static const struct bus_ops kbd_ops = { kbd_read, kbd_write };

static void on_timeout(void *arg)
{
    (void)arg;
    stop = 1;
}

int main(int argc, char **argv)
{
    struct guest_mem mem;
    struct bus mmio, pio;
    struct vm_stats stats = { 0 };
    struct cpu_boot boot;
    struct cpu_stop st;
    struct cpu *cpu;
    char err[300];

    if (argc < 4) {
        fprintf(stderr, "usage: kvm_linux_boot KERNEL INITRD CMDLINE [SECONDS]\n");
        return 2;
    }
    unsigned secs = argc > 4 ? (unsigned)atoi(argv[4]) : 120;
    if (guest_mem_init(&mem, 512ULL << 20))
        return 2;
    bus_init(&mmio, BUS_MMIO);
    bus_init(&pio, BUS_PIO);
    bus_register(&pio, 0x60, 5, &kbd_ops, NULL, "i8042");
    int rc = loader_linux_load(&mem, argv[1], argv[2][0] ? argv[2] : NULL, argv[3], &boot, err,
                               sizeof(err));
    if (rc) {
        fprintf(stderr, "kvm_linux_boot: %s\n", err);
        return 2;
    }
    struct cpu_env env = { .mem = &mem, .mmio = &mmio, .pio = &pio, .stats = &stats,
                           .stop_requested = &stop };
    rc = kvm_cpu_backend.create(&env, &cpu);
    if (rc) {
        fprintf(stderr, "kvm_linux_boot: create: %s\n", strerror(-rc));
        return 2;
    }
    const struct clock *c = kvm_cpu_backend.clock(cpu);
    struct device uart;
    struct device_env denv = {
        .mem = &mem, .clock = c, .irq = { kvm_cpu_backend.irq_sink(cpu), MEMMAP_SERIAL_IRQ },
        .base = MEMMAP_SERIAL_PORT, .log = stderr,
    };
    rc = device_create(&uart, "uart8250", "out=stdio", &denv, &pio, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "kvm_linux_boot: %s\n", err);
        return 2;
    }
    c->schedule(c->opaque, (uint64_t)secs * 1000000000ULL, on_timeout, NULL);
    rc = kvm_cpu_backend.boot(cpu, &boot);
    if (!rc)
        rc = kvm_cpu_backend.run(cpu, &st);
    fprintf(stderr, "\nkvm_linux_boot: %s after %.1f s (%s), %llu port exits\n",
            reset_seen ? "i8042 reset" : "stopped", stats.virtual_ns / 1e9,
            rc ? strerror(-rc) : st.detail,
            (unsigned long long)(stats.exits[EXIT_PIO_IN] + stats.exits[EXIT_PIO_OUT]));
    kvm_cpu_backend.destroy(cpu);
    device_destroy(&uart);
    guest_mem_destroy(&mem);
    return reset_seen ? 0 : 1;
}
