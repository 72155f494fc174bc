/* The KVM CPU backend, driven by tiny PVH32 guests whose machine code is below (assembly in
 * the comments). Every test needs /dev/kvm: when it does not open, each test reports a
 * counted skip with the reason (tests/skip.h), and `make test-kvm` (or the kvm-nested part
 * of `make test`) runs them in a nested-KVM VM (scripts/test-kvm.sh). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cpu_backend.h"
#include "vmm/kvm/kvm_irq.h"
#include "vmm/memmap.h"
#include "tests/check_run.h"
#include "tests/skip.h"

#define GUEST_RAM      (16u << 20)
#define GUEST_ENTRY    0x100000u
#define PORT_DATA      0x510
#define PORT_DATA2     0x514
#define PORT_STOP      0x518     /* writing 0x5a sets stop_requested */
#define PORT_READY     0x51c     /* irq test: the host raises GSI 5 */
#define PORT_ACK       0x520     /* irq test: the handler ran; the host lowers GSI 5 */
#define PORT_HANDLER   0x524     /* level tests: the handler ran (before its EOI) */
#define PORT_MASKED    0x528     /* level tests: GSI 5 was raised while masked */
#define MMIO_BASE      0xd0000000u

struct access { int is_write; uint64_t off; unsigned size; uint64_t value; };

struct fixture {
    const struct cpu_backend_ops *ops;  /* kvm unless a test switches (use_backend) */
    struct guest_mem mem;
    struct bus mmio, pio;
    struct vm_stats stats;
    volatile int stop;
    struct cpu_env env;
    struct cpu *cpu;
    struct cpu_stop st;
    struct access log[64];
    unsigned nlog;
    unsigned stop_writes_other;     /* writes to PORT_STOP with a value other than 0x5a */
    unsigned acks;
    unsigned handler_runs;          /* level tests: handler runs with remote IRR set */
    unsigned phantom_runs;          /* level tests: without (kvm-pvm) */
    unsigned lower_at_run;          /* the handler run at which the host lowers GSI 5 */
    int lower_while_masked;         /* at PORT_MASKED: lower GSI 5 (1) or hold it (0) */
    unsigned polls;
    uint64_t mmio_read_value;
};

static struct fixture fx;

static void set_gsi5(int level)
{
    const struct irq_sink *s = fx.ops->irq_sink(fx.cpu);
    s->set_level(s->opaque, 5, level);
}

static void log_access(int w, uint64_t off, unsigned size, uint64_t v)
{
    if (fx.nlog < 64)
        fx.log[fx.nlog++] = (struct access){ w, off, size, v };
}

static int pio_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    (void)opaque;
    *value = off == 0 ? 0x0badf00d : 0;
    log_access(0, off, size, *value);
    return 0;
}

static int pio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    (void)opaque;
    log_access(1, off, size, value);
    if (off == PORT_STOP - PORT_DATA) {
        if (value == 0x5a)
            fx.stop = 1;
        else
            fx.stop_writes_other++;
    } else if (off == PORT_READY - PORT_DATA) {
        set_gsi5(1);
    } else if (off == PORT_ACK - PORT_DATA) {
        fx.acks++;
        set_gsi5(0);
    } else if (off == PORT_HANDLER - PORT_DATA) {
        /* kvm-pvm sometimes runs the handler once more after the EOI of a level interrupt
         * the device had lowered (vmm/kvm/README.md, "What /dev/kvm is"); the IOAPIC says
         * nothing is in service then. Counting only runs with remote IRR set keeps the
         * test exact there too. */
        if (!(value & (1u << 14)))
            fx.phantom_runs++;
        else if (++fx.handler_runs == fx.lower_at_run)
            set_gsi5(0);
    } else if (off == PORT_MASKED - PORT_DATA) {
        if (fx.lower_while_masked)
            set_gsi5(0);
    }
    return 0;
}

static const struct bus_ops pio_ops = { pio_read, pio_write };

static int mmio_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    (void)opaque;
    *value = fx.mmio_read_value;
    log_access(0, off, size, *value);
    return 0;
}

static int mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    (void)opaque;
    log_access(1, off, size, value);
    return 0;
}

static const struct bus_ops mmio_ops = { mmio_read, mmio_write };

static void count_poll(void *opaque)
{
    (void)opaque;
    fx.polls++;
}

static char skip_reason[160];
static int kvm_ok;

/* First statement of every test: without a usable /dev/kvm the test is a counted skip. */
#define REQUIRE_KVM() do { if (!kvm_ok) SKIP_TEST("%s", skip_reason); } while (0)

static void setup(void)
{
    memset(&fx, 0, sizeof(fx));
    if (!kvm_ok)
        return;
    ck_assert_int_eq(guest_mem_init(&fx.mem, GUEST_RAM), 0);
    bus_init(&fx.mmio, BUS_MMIO);
    bus_init(&fx.pio, BUS_PIO);
    ck_assert_int_ge(bus_register(&fx.pio, PORT_DATA, 0x20, &pio_ops, NULL, "test"), 0);
    ck_assert_int_ge(bus_register(&fx.mmio, MMIO_BASE, 0x1000, &mmio_ops, NULL, "test"), 0);
    fx.env = (struct cpu_env){
        .mem = &fx.mem, .mmio = &fx.mmio, .pio = &fx.pio, .stats = &fx.stats,
        .stop_requested = &fx.stop, .poll = count_poll,
    };
    fx.ops = &kvm_cpu_backend;
    ck_assert_int_eq(kvm_cpu_backend.create(&fx.env, &fx.cpu), 0);
}

static void teardown(void)
{
    if (!kvm_ok)
        return;
    fx.ops->destroy(fx.cpu);
    guest_mem_destroy(&fx.mem);
}

/* The interrupt tests run on three CPUs that must agree: the software CPU (its emulated
 * IOAPIC is the reference), KVM with irqfds, KVM with KVM_IRQ_LINE (VMLAB_KVM_IRQFD=0). */
enum { ON_SIM, ON_KVM_IRQFD, ON_KVM_IRQ_LINE, ON_COUNT };

static void use_backend(int which)
{
    fx.ops->destroy(fx.cpu);
    fx.cpu = NULL;
    fx.ops = which == ON_SIM ? &sim_cpu_backend : &kvm_cpu_backend;
    if (which != ON_SIM)
        setenv("VMLAB_KVM_IRQFD", which == ON_KVM_IRQ_LINE ? "0" : "1", 1);
    int r = fx.ops->create(&fx.env, &fx.cpu);
    unsetenv("VMLAB_KVM_IRQFD");
    ck_assert_int_eq(r, 0);
    if (which == ON_KVM_IRQFD)
        ck_assert_str_eq(kvm_irq_path(fx.cpu), "irqfd");
    if (which == ON_KVM_IRQ_LINE)
        ck_assert_str_eq(kvm_irq_path(fx.cpu), "irq_line");
}

static void boot_code(const uint8_t *code, size_t len)
{
    ck_assert_int_eq(guest_mem_write(&fx.mem, GUEST_ENTRY, code, len), 0);
    struct cpu_boot b = { CPU_BOOT_PVH32, GUEST_ENTRY, MEMMAP_START_INFO_ADDR };
    ck_assert_int_eq(fx.ops->boot(fx.cpu, &b), 0);
}

static void run_guest(void)
{
    ck_assert_int_eq(fx.ops->run(fx.cpu, &fx.st), 0);
}

START_TEST(probe_says_kvm_is_there)
{
    REQUIRE_KVM();
    char why[160] = "";
    ck_assert_int_eq(kvm_cpu_backend.probe(why, sizeof(why)), 0);
    ck_assert_ptr_nonnull(strstr(why, "/dev/kvm"));
    ck_assert_str_eq(kvm_cpu_backend.name, "kvm");
}
END_TEST

/*  mov $0x510,%dx; mov $0x12345678,%eax; out %eax,%dx; in %dx,%eax; inc %eax
 *  mov $0x514,%dx; out %eax,%dx; mov $0x518,%dx; mov $0x5a,%al; out %al,%dx; cli; hlt */
static const uint8_t guest_pio[] = {
    0x66, 0xba, 0x10, 0x05, 0xb8, 0x78, 0x56, 0x34, 0x12, 0xef, 0xed, 0x40,
    0x66, 0xba, 0x14, 0x05, 0xef, 0x66, 0xba, 0x18, 0x05, 0xb0, 0x5a, 0xee,
    0xfa, 0xf4,
};

START_TEST(port_io_reaches_the_bus)
{
    REQUIRE_KVM();
    boot_code(guest_pio, sizeof(guest_pio));
    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_REQUESTED);
    ck_assert_uint_eq(fx.nlog, 4);
    ck_assert_int_eq(fx.log[0].is_write, 1);
    ck_assert_uint_eq(fx.log[0].off, 0);
    ck_assert_uint_eq(fx.log[0].size, 4);
    ck_assert_uint_eq(fx.log[0].value, 0x12345678);
    ck_assert_int_eq(fx.log[1].is_write, 0);
    /* The guest incremented what the bus returned and wrote it to the next port. */
    ck_assert_uint_eq(fx.log[2].off, 4);
    ck_assert_uint_eq(fx.log[2].value, 0x0badf00e);
    ck_assert_uint_eq(fx.log[3].size, 1);
    ck_assert_uint_eq(fx.stats.exits[EXIT_PIO_OUT], 3);
    ck_assert_uint_eq(fx.stats.exits[EXIT_PIO_IN], 1);
    ck_assert_uint_eq(fx.stats.insns, 0);
    /* The recent-exits ring, oldest first. */
    ck_assert_uint_eq(fx.st.nrecent, 4);
    ck_assert_uint_eq(fx.st.recent[0].kind, EXIT_PIO_OUT);
    ck_assert_uint_eq(fx.st.recent[0].addr, PORT_DATA);
    ck_assert_uint_eq(fx.st.recent[1].kind, EXIT_PIO_IN);
    ck_assert_uint_eq(fx.st.recent[3].addr, PORT_STOP);
    ck_assert_uint_eq(fx.st.recent[3].value, 0x5a);
}
END_TEST

/*  movl $0xcafef00d,0xd0000010; mov 0xd0000020,%eax; mov %eax,0xd0000030
 *  movw $0xbeef,0xd0000040; mov $0x518,%dx; mov $0x5a,%al; out %al,%dx; cli; hlt */
static const uint8_t guest_mmio[] = {
    0xc7, 0x05, 0x10, 0x00, 0x00, 0xd0, 0x0d, 0xf0, 0xfe, 0xca, 0xa1, 0x20,
    0x00, 0x00, 0xd0, 0xa3, 0x30, 0x00, 0x00, 0xd0, 0x66, 0xc7, 0x05, 0x40,
    0x00, 0x00, 0xd0, 0xef, 0xbe, 0x66, 0xba, 0x18, 0x05, 0xb0, 0x5a, 0xee,
    0xfa, 0xf4,
};

START_TEST(mmio_exit_reaches_the_bus)
{
    REQUIRE_KVM();
    fx.mmio_read_value = 0x5a5a0001;
    boot_code(guest_mmio, sizeof(guest_mmio));
    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_REQUESTED);
    /* 4 MMIO accesses, then the stop port write. */
    ck_assert_uint_eq(fx.nlog, 5);
    ck_assert_int_eq(fx.log[0].is_write, 1);
    ck_assert_uint_eq(fx.log[0].off, 0x10);
    ck_assert_uint_eq(fx.log[0].value, 0xcafef00d);
    ck_assert_uint_eq(fx.log[0].size, 4);
    ck_assert_int_eq(fx.log[1].is_write, 0);
    ck_assert_uint_eq(fx.log[1].off, 0x20);
    ck_assert_uint_eq(fx.log[2].off, 0x30);
    ck_assert_uint_eq(fx.log[2].value, 0x5a5a0001);
    ck_assert_uint_eq(fx.log[3].size, 2);
    ck_assert_uint_eq(fx.log[3].value, 0xbeef);
    ck_assert_uint_eq(fx.stats.exits[EXIT_MMIO_WRITE], 3);
    ck_assert_uint_eq(fx.stats.exits[EXIT_MMIO_READ], 1);
    ck_assert_uint_eq(fx.st.recent[0].kind, EXIT_MMIO_WRITE);
    ck_assert_uint_eq(fx.st.recent[0].addr, MMIO_BASE + 0x10);
}
END_TEST

/* cli; hlt; jmp . */
static const uint8_t guest_hlt[] = { 0xfa, 0xf4, 0xeb, 0xfe };

START_TEST(hlt_with_interrupts_off_is_halted)
{
    REQUIRE_KVM();
    boot_code(guest_hlt, sizeof(guest_hlt));
    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_HALTED);
    ck_assert_uint_eq(fx.st.rip, GUEST_ENTRY + 2);
    ck_assert_ptr_nonnull(strstr(fx.st.detail, "HLT"));
}
END_TEST

/* ud2 with no IDT: #UD, #GP, double fault, triple fault. */
static const uint8_t guest_triple[] = { 0x0f, 0x0b };

START_TEST(triple_fault_is_reported)
{
    REQUIRE_KVM();
    boot_code(guest_triple, sizeof(guest_triple));
    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_TRIPLE_FAULT);
    ck_assert_ptr_nonnull(strstr(fx.st.detail, "triple fault"));
}
END_TEST

/*  mov $0x80000,%esp; lgdt 0x5100; lidt 0x5108
 *  movl $0x1ff,0xfee000f0                          LAPIC on, spurious vector 0xff
 *  movl $0x1a,0xfec00000; movl $0x30,0xfec00010    IOAPIC pin 5 (index 0x10 + 2*5):
 *  movl $0x1b,0xfec00000; movl $0,0xfec00010       vector 0x30, edge, to APIC 0
 *                                                  (byte GUEST_IRQ_TRIGGER: 0x80 = level)
 *  mov $0x51c,%dx; out %al,%dx                     "ready": the host raises GSI 5
 *  sti; 1: hlt; jmp 1b
 * handler (offset 0x4e):
 *  mov $0x520,%dx; out %al,%dx                     "got it": the host lowers GSI 5
 *  movl $0,0xfee000b0                              EOI
 *  mov $0x518,%dx; mov $0x5a,%al; out %al,%dx; iret */
static const uint8_t guest_irq[] = {
    0xbc, 0x00, 0x00, 0x08, 0x00,
    0x0f, 0x01, 0x15, 0x00, 0x51, 0x00, 0x00, 0x0f, 0x01, 0x1d, 0x08, 0x51,
    0x00, 0x00, 0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00, 0x00,
    0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe, 0x1a, 0x00, 0x00, 0x00, 0xc7, 0x05,
    0x10, 0x00, 0xc0, 0xfe, 0x30, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x00,
    0xc0, 0xfe, 0x1b, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x10, 0x00, 0xc0, 0xfe,
    0x00, 0x00, 0x00, 0x00, 0x66, 0xba, 0x1c, 0x05, 0xee, 0xfb, 0xf4, 0xeb,
    0xfd, 0x66, 0xba, 0x20, 0x05, 0xee, 0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe,
    0x00, 0x00, 0x00, 0x00, 0x66, 0xba, 0x18, 0x05, 0xb0, 0x5a, 0xee, 0xcf,
};
#define GUEST_IRQ_HANDLER 0x4e
#define GUEST_IRQ_TRIGGER 0x2e

/* GDT at 0x5000 (null, code 0x08, data 0x10), GDTR at 0x5100, IDT at 0x5800 with a
 * 32-bit interrupt gate for vector 0x30 to the code at GUEST_ENTRY + handler, IDTR at
 * 0x5108. */
static void write_tables(uint32_t handler)
{
    uint64_t gdt[3] = { 0, 0x00cf9b000000ffffULL, 0x00cf93000000ffffULL };
    uint8_t gdtr[6], idtr[6];
    uint16_t lim = sizeof(gdt) - 1;
    uint32_t base = 0x5000;
    memcpy(gdtr, &lim, 2);
    memcpy(gdtr + 2, &base, 4);
    lim = 256 * 8 - 1;
    base = 0x5800;
    memcpy(idtr, &lim, 2);
    memcpy(idtr + 2, &base, 4);
    uint32_t h = GUEST_ENTRY + handler;
    uint64_t gate = (h & 0xffffULL) | (0x08ULL << 16) | (0x8eULL << 40) |
                    ((uint64_t)(h >> 16) << 48);
    ck_assert_int_eq(guest_mem_write(&fx.mem, 0x5000, gdt, sizeof(gdt)), 0);
    ck_assert_int_eq(guest_mem_write(&fx.mem, 0x5100, gdtr, 6), 0);
    ck_assert_int_eq(guest_mem_write(&fx.mem, 0x5108, idtr, 6), 0);
    ck_assert_int_eq(guest_mem_write(&fx.mem, 0x5800 + 0x30 * 8, &gate, 8), 0);
}

/* _i 0: pin 5 edge (KVM_IRQ_LINE on KVM), 1: level (the resampling irqfd). */
START_TEST(irq_sink_delivers_through_the_ioapic)
{
    REQUIRE_KVM();
    uint8_t code[sizeof(guest_irq)];
    memcpy(code, guest_irq, sizeof(code));
    ck_assert_uint_eq(code[GUEST_IRQ_TRIGGER - 1], 0x30);
    code[GUEST_IRQ_TRIGGER] = _i ? 0x80 : 0x00;
    use_backend(ON_KVM_IRQFD);
    write_tables(GUEST_IRQ_HANDLER);
    boot_code(code, sizeof(code));
    run_guest();
    ck_assert_str_eq(kvm_irq_path(fx.cpu), "irqfd");
    ck_assert_int_eq(fx.st.reason, CPU_STOP_REQUESTED);
    ck_assert_uint_eq(fx.acks, 1);
    ck_assert_uint_eq(fx.stats.exits[EXIT_IRQ], 1);
}
END_TEST

/* As guest_irq, but pin 5 is level-triggered (RTE 0x8030) and the handler leaves the line
 * to the host:
 *  ... movl $0x8030,0xfec00010 ...; mov $0x51c,%dx; out %al,%dx   "ready": host raises
 *  idle: sti; 1: hlt; jmp 1b
 * handler (offset 0x4e):
 *  movl $0x1a,0xfec00000; mov 0xfec00010,%eax     pin 5's redirection entry
 *  mov $0x524,%dx; out %eax,%dx    the host counts the run if remote IRR is set (an
 *                                  interrupt in service) and lowers GSI 5 at run lower_at_run
 *  movl $0,0xfee000b0; jmp idle    EOI; no iret: kvm-pvm's emulator cannot run a
 *                                  protected-mode iret (12 bytes of stack per run) */
static const uint8_t guest_level[] = {
    0xbc, 0x00, 0x00, 0x08, 0x00, 0x0f, 0x01, 0x15, 0x00, 0x51, 0x00, 0x00,
    0x0f, 0x01, 0x1d, 0x08, 0x51, 0x00, 0x00, 0xc7, 0x05, 0xf0, 0x00, 0xe0,
    0xfe, 0xff, 0x01, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe, 0x1a,
    0x00, 0x00, 0x00, 0xc7, 0x05, 0x10, 0x00, 0xc0, 0xfe, 0x30, 0x80, 0x00,
    0x00, 0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe, 0x1b, 0x00, 0x00, 0x00, 0xc7,
    0x05, 0x10, 0x00, 0xc0, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x66, 0xba, 0x1c,
    0x05, 0xee, 0xfb, 0xf4, 0xeb, 0xfd, 0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe,
    0x1a, 0x00, 0x00, 0x00, 0xa1, 0x10, 0x00, 0xc0, 0xfe, 0x66, 0xba, 0x24,
    0x05, 0xef, 0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00,
    0xeb, 0xdc,
};
#define GUEST_LEVEL_HANDLER 0x4e

/* As guest_level, but pin 5 starts masked (RTE 0x18030); after "ready" the guest reports
 * at 0x528 (the host lowers the line or holds it), then unmasks pin 5:
 *  mov $0x528,%dx; out %al,%dx; movl $0x1a,0xfec00000; movl $0x8030,0xfec00010
 *  idle: sti; 1: hlt; jmp 1b
 * handler (offset 0x67): as guest_level's. */
static const uint8_t guest_masked[] = {
    0xbc, 0x00, 0x00, 0x08, 0x00, 0x0f, 0x01, 0x15, 0x00, 0x51, 0x00, 0x00,
    0x0f, 0x01, 0x1d, 0x08, 0x51, 0x00, 0x00, 0xc7, 0x05, 0xf0, 0x00, 0xe0,
    0xfe, 0xff, 0x01, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe, 0x1a,
    0x00, 0x00, 0x00, 0xc7, 0x05, 0x10, 0x00, 0xc0, 0xfe, 0x30, 0x80, 0x01,
    0x00, 0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe, 0x1b, 0x00, 0x00, 0x00, 0xc7,
    0x05, 0x10, 0x00, 0xc0, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x66, 0xba, 0x1c,
    0x05, 0xee, 0x66, 0xba, 0x28, 0x05, 0xee, 0xc7, 0x05, 0x00, 0x00, 0xc0,
    0xfe, 0x1a, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x10, 0x00, 0xc0, 0xfe, 0x30,
    0x80, 0x00, 0x00, 0xfb, 0xf4, 0xeb, 0xfd, 0xc7, 0x05, 0x00, 0x00, 0xc0,
    0xfe, 0x1a, 0x00, 0x00, 0x00, 0xa1, 0x10, 0x00, 0xc0, 0xfe, 0x66, 0xba,
    0x24, 0x05, 0xef, 0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00,
    0x00, 0xeb, 0xdc,
};
#define GUEST_MASKED_HANDLER 0x67

/* kvm-pvm mishandles level interrupts injected by the irqfd kworker (vmm/kvm/README.md:
 * the backend uses KVM_IRQ_LINE there unless VMLAB_KVM_IRQFD=1): that row is run but not
 * counted there. Real KVM (make test-kvm's nested path) checks it exactly. */
static int runs_unchecked(int which)
{
    return which == ON_KVM_IRQFD && access("/sys/module/kvm_pvm", F_OK) == 0;
}

static void check_runs(int which, unsigned got, unsigned want)
{
    if (runs_unchecked(which)) {
        fprintf(stderr, "test_kvm: kvm-pvm, irqfd forced: %u handler runs (real KVM: %u), "
                "not checked\n", got, want);
        return;
    }
    ck_assert_uint_eq(got, want);
}

/* The level tests' stop timer: every 300 ms of host time, stop once the expected handler
 * runs have been seen (or after 20 s): then at least 300 ms passed after the last expected
 * interrupt, for a wrong extra one (an irqfd re-assertion goes through the resample thread
 * and a kworker) to show up. A fixed 300 ms was too short on a loaded machine under nested
 * KVM: the one expected interrupt had not come yet (0 runs seen, 1 wanted). */
static unsigned level_want;
static unsigned level_ticks;

static void level_stop_check(void *arg)
{
    const struct clock *c = arg;
    if (fx.handler_runs >= level_want || ++level_ticks >= 20000 / 300)
        fx.stop = 1;
    else
        ck_assert_int_gt(c->schedule(c->opaque, clock_now_ns(c) + 300000000ULL,
                                     level_stop_check, arg), 0);
}

/* Runs a level-line guest on backend `which` until it has seen `want` handler runs and a
 * while more (level_stop_check). Returns handler runs. */
static unsigned run_level_guest(int which, const uint8_t *code, size_t len, uint32_t handler,
                                unsigned want)
{
    use_backend(which);
    write_tables(handler);
    boot_code(code, len);
    const struct clock *c = fx.ops->clock(fx.cpu);
    level_want = runs_unchecked(which) ? 0 : want;   /* kvm-pvm's count may never come */
    level_ticks = 0;
    ck_assert_int_gt(c->schedule(c->opaque, clock_now_ns(c) + 300000000ULL, level_stop_check,
                                 (void *)c), 0);
    run_guest();
    if (fx.phantom_runs)
        fprintf(stderr, "test_kvm: %u handler run(s) with nothing in service (kvm-pvm), "
                "%u with; backend %d, lower at run %u%s\n", fx.phantom_runs, fx.handler_runs,
                which, fx.lower_at_run, len == sizeof(guest_masked) ? ", masked guest" : "");
    ck_assert_msg(fx.st.reason == CPU_STOP_REQUESTED, "stop %d at %#llx: %s", fx.st.reason,
                  (unsigned long long)fx.st.rip, fx.st.detail);
    return fx.handler_runs;
}

/* The device holds the line through the first EOI: the IOAPIC delivers it again; the host
 * lowers it in the second handler run, before that EOI: no third interrupt. */
START_TEST(level_line_held_high_is_redelivered_after_eoi)
{
    REQUIRE_KVM();
    fx.lower_at_run = 2;
    unsigned runs = run_level_guest(_i, guest_level, sizeof(guest_level), GUEST_LEVEL_HANDLER, 2);
    check_runs(_i, runs, 2);
}
END_TEST

/* The device lowers the line in the handler, before the EOI: one interrupt only. */
START_TEST(level_line_lowered_before_eoi_is_delivered_once)
{
    REQUIRE_KVM();
    fx.lower_at_run = 1;
    unsigned runs = run_level_guest(_i, guest_level, sizeof(guest_level), GUEST_LEVEL_HANDLER, 1);
    check_runs(_i, runs, 1);
}
END_TEST

/* Raised and lowered while the pin is masked: nothing at unmask (the line is low). */
START_TEST(level_line_lowered_while_masked_is_not_delivered)
{
    REQUIRE_KVM();
    fx.lower_at_run = 1;
    fx.lower_while_masked = 1;
    unsigned runs = run_level_guest(_i, guest_masked, sizeof(guest_masked),
                                    GUEST_MASKED_HANDLER, 0);
    check_runs(_i, runs, 0);
}
END_TEST

/* Raised while masked and still high at unmask: delivered then, once. */
START_TEST(level_line_held_while_masked_is_delivered_at_unmask)
{
    REQUIRE_KVM();
    fx.lower_at_run = 1;
    unsigned runs = run_level_guest(_i, guest_masked, sizeof(guest_masked),
                                    GUEST_MASKED_HANDLER, 1);
    check_runs(_i, runs, 1);
}
END_TEST

/* sti; 1: hlt; jmp 1b — idles with interrupts on, forever. */
static const uint8_t guest_idle[] = { 0xfb, 0xf4, 0xeb, 0xfd };

struct timer_probe {
    int fired;
    pthread_t thread;
    uint64_t at_ns;
    uint64_t now_ns;
    int order;
};

static int fire_order;

static void on_timer(void *arg)
{
    struct timer_probe *p = arg;
    const struct clock *c = kvm_cpu_backend.clock(fx.cpu);
    p->fired++;
    p->thread = pthread_self();
    p->now_ns = clock_now_ns(c);
    p->order = ++fire_order;
}

static void on_timer_stop(void *arg)
{
    on_timer(arg);
    fx.stop = 1;
}

START_TEST(clock_timer_fires_on_the_vcpu_thread)
{
    REQUIRE_KVM();
    const struct clock *c = kvm_cpu_backend.clock(fx.cpu);
    struct timer_probe a = { 0 }, b = { 0 }, cancelled = { 0 }, last = { 0 };
    uint64_t now = clock_now_ns(c);

    fire_order = 0;
    boot_code(guest_idle, sizeof(guest_idle));
    a.at_ns = b.at_ns = now + 5000000;
    /* Same deadline: fire in scheduling order. */
    ck_assert_int_gt(c->schedule(c->opaque, a.at_ns, on_timer, &a), 0);
    ck_assert_int_gt(c->schedule(c->opaque, b.at_ns, on_timer, &b), 0);
    int64_t id = c->schedule(c->opaque, now + 1000000, on_timer, &cancelled);
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(c->cancel(c->opaque, id), 0);
    ck_assert_int_eq(c->cancel(c->opaque, id), -ENOENT);
    last.at_ns = now + 20000000;
    ck_assert_int_gt(c->schedule(c->opaque, last.at_ns, on_timer_stop, &last), 0);

    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_REQUESTED);
    ck_assert_int_eq(a.fired, 1);
    ck_assert_int_eq(b.fired, 1);
    ck_assert_int_eq(last.fired, 1);
    ck_assert_int_eq(cancelled.fired, 0);
    ck_assert_int_eq(a.order, 1);
    ck_assert_int_eq(b.order, 2);
    ck_assert_int_eq(last.order, 3);
    ck_assert(pthread_equal(a.thread, pthread_self()));
    ck_assert(pthread_equal(last.thread, pthread_self()));
    /* Never early. */
    ck_assert_uint_ge(a.now_ns, a.at_ns);
    ck_assert_uint_ge(last.now_ns, last.at_ns);
    ck_assert_uint_ge(fx.stats.virtual_ns, last.at_ns);
    /* 20 ms of guest time: env->poll came round in between. */
    ck_assert_uint_gt(fx.polls, 0);
}
END_TEST

static void *stopper(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    fx.stop = 1;
    return NULL;
}

START_TEST(stop_from_another_thread_ends_an_idle_guest)
{
    REQUIRE_KVM();
    pthread_t t;
    boot_code(guest_idle, sizeof(guest_idle));
    fx.env.external_wakeups = 1;        /* as with a control socket: the idle guest waits */
    ck_assert_int_eq(pthread_create(&t, NULL, stopper, NULL), 0);
    run_guest();
    pthread_join(t, NULL);
    ck_assert_int_eq(fx.st.reason, CPU_STOP_REQUESTED);
    ck_assert_str_eq(fx.st.detail, "stop requested");
}
END_TEST

START_TEST(idle_with_nothing_armed_is_hung)
{
    REQUIRE_KVM();
    /* sti; hlt with no VMM timer, no LAPIC timer and nobody outside: as on the software
     * CPU, a hung guest (vmlab exit status 6), found at the second kick (4 ms polls). */
    boot_code(guest_idle, sizeof(guest_idle));
    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_HALTED);
    ck_assert_ptr_nonnull(strstr(fx.st.detail, "interrupts enabled and no timer armed"));
    ck_assert_uint_lt(fx.stats.virtual_ns, 2000000000ULL);
}
END_TEST

/* Every port 0..0xffff but the stop port gets 0xa5; every 64 KiB of the MMIO hole from
 * 0xd0000000 gets 0xdeadbeef and is read back; then the stop port.
 *  xor %ecx,%ecx; 1: mov %ecx,%edx; cmp $0x518,%edx; je 2f; mov $0xa5,%al; out %al,%dx
 *  2: inc %ecx; cmp $0x10000,%ecx; jne 1b
 *  mov $0xd0000000,%ebx; 3: movl $0xdeadbeef,(%ebx); mov (%ebx),%eax; add $0x10000,%ebx
 *  jnz 3b; mov $0x518,%dx; mov $0x5a,%al; out %al,%dx; cli; hlt */
static const uint8_t guest_garbage[] = {
    0x31, 0xc9, 0x89, 0xca, 0x81, 0xfa, 0x18, 0x05, 0x00, 0x00, 0x74, 0x03,
    0xb0, 0xa5, 0xee, 0x41, 0x81, 0xf9, 0x00, 0x00, 0x01, 0x00, 0x75, 0xea,
    0xbb, 0x00, 0x00, 0x00, 0xd0, 0xc7, 0x03, 0xef, 0xbe, 0xad, 0xde, 0x8b,
    0x03, 0x81, 0xc3, 0x00, 0x00, 0x01, 0x00, 0x75, 0xf0, 0x66, 0xba, 0x18,
    0x05, 0xb0, 0x5a, 0xee, 0xfa, 0xf4,
};

START_TEST(garbage_to_every_port_and_the_mmio_hole_is_survived)
{
    REQUIRE_KVM();
    boot_code(guest_garbage, sizeof(guest_garbage));
    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_REQUESTED);
    ck_assert_uint_eq(fx.stop_writes_other, 0);
    /* Ports the in-kernel PIC/IOAPIC decode never reach us; the rest all do. */
    ck_assert_uint_gt(fx.stats.exits[EXIT_PIO_OUT], 0xff00);
    ck_assert_uint_gt(fx.stats.exits[EXIT_MMIO_WRITE], 12000);
}
END_TEST

START_TEST(boot_rejects_a_pvh_entry_above_4g)
{
    REQUIRE_KVM();
    struct cpu_boot b = { CPU_BOOT_PVH32, 0x100000000ULL, 0 };
    ck_assert_int_eq(kvm_cpu_backend.boot(fx.cpu, &b), -EINVAL);
    b = (struct cpu_boot){ (enum cpu_boot_mode)7, GUEST_ENTRY, 0 };
    ck_assert_int_eq(kvm_cpu_backend.boot(fx.cpu, &b), -EINVAL);
}
END_TEST

/* 64-bit entry: the same port write, reached in long mode through the backend's page
 * tables. mov $0x518,%dx; mov %esi,%eax; out %al,%dx; cli; hlt  (RSI = 0x5a) */
static const uint8_t guest_long[] = { 0x66, 0xba, 0x18, 0x05, 0x89, 0xf0, 0xee, 0xfa, 0xf4 };

START_TEST(linux64_entry_runs_64bit_code)
{
    REQUIRE_KVM();
    ck_assert_int_eq(guest_mem_write(&fx.mem, GUEST_ENTRY, guest_long, sizeof(guest_long)), 0);
    struct cpu_boot b = { CPU_BOOT_LINUX64, GUEST_ENTRY, 0x5a };
    ck_assert_int_eq(kvm_cpu_backend.boot(fx.cpu, &b), 0);
    run_guest();
    ck_assert_int_eq(fx.st.reason, CPU_STOP_REQUESTED);
    ck_assert_uint_eq(fx.stop_writes_other, 0);
}
END_TEST

static Suite *kvm_suite(void)
{
    Suite *s = suite_create("kvm");
    TCase *tc = tcase_create("kvm");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, probe_says_kvm_is_there);
    tcase_add_test(tc, port_io_reaches_the_bus);
    tcase_add_test(tc, mmio_exit_reaches_the_bus);
    tcase_add_test(tc, hlt_with_interrupts_off_is_halted);
    tcase_add_test(tc, idle_with_nothing_armed_is_hung);
    tcase_add_test(tc, triple_fault_is_reported);
    tcase_add_loop_test(tc, irq_sink_delivers_through_the_ioapic, 0, 2);
    tcase_add_loop_test(tc, level_line_held_high_is_redelivered_after_eoi, 0, ON_COUNT);
    tcase_add_loop_test(tc, level_line_lowered_before_eoi_is_delivered_once, 0, ON_COUNT);
    tcase_add_loop_test(tc, level_line_lowered_while_masked_is_not_delivered, 0, ON_COUNT);
    tcase_add_loop_test(tc, level_line_held_while_masked_is_delivered_at_unmask, 0, ON_COUNT);
    tcase_add_test(tc, clock_timer_fires_on_the_vcpu_thread);
    tcase_add_test(tc, stop_from_another_thread_ends_an_idle_guest);
    tcase_add_test(tc, garbage_to_every_port_and_the_mmio_hole_is_survived);
    tcase_add_test(tc, boot_rejects_a_pvh_entry_above_4g);
    tcase_add_test(tc, linux64_entry_runs_64bit_code);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    kvm_ok = kvm_cpu_backend.probe(skip_reason, sizeof(skip_reason)) == 0;
    if (!kvm_ok)
        fprintf(stderr, "test_kvm: %s: every test is skipped (make test-kvm runs them in a "
                "nested-KVM VM)\n", skip_reason);
    return check_run(kvm_suite());
}
