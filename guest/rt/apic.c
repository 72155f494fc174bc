/* Local APIC (xAPIC MMIO) and I/O APIC. */
#include "rt_internal.h"

#define LAPIC_ID 0x020
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define SVR_ENABLE (1u << 8)

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REDTBL 0x10
#define IOAPIC2_BASE 0xfec10000ull  /* QEMU microvm's second I/O APIC (GSI 24..) */
#define RTE_LEVEL (1u << 15)
#define RTE_MASKED (1u << 16)

static int lapic_ready;

int rt_lapic_ready(void) { return lapic_ready; }

static uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }
static void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }

void lapic_init(void)
{
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
    lapic_write(LAPIC_SVR, SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
    lapic_ready = 1;
}

void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

/* divide configuration register encoding (bits 0,1,3) */
static uint32_t div_code(unsigned divide)
{
    switch (divide) {
    case 2: return 0x0;
    case 4: return 0x1;
    case 8: return 0x2;
    case 16: return 0x3;
    case 32: return 0x8;
    case 64: return 0x9;
    case 128: return 0xa;
    default: return 0xb;        /* divide by 1 */
    }
}

void lapic_timer_start(uint8_t vector, uint32_t initial_count, int periodic, unsigned divide)
{
    lapic_write(LAPIC_TIMER_DIV, div_code(divide));
    lapic_write(LAPIC_LVT_TIMER, vector | (periodic ? LVT_PERIODIC : 0));
    lapic_write(LAPIC_TIMER_INIT, initial_count);   /* writing the count starts the timer */
}

void lapic_timer_stop(void)
{
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_TIMER_INIT, 0);
}

uint32_t lapic_timer_current(void) { return lapic_read(LAPIC_TIMER_CUR); }

static uint32_t ioapic_read(uint64_t base, uint32_t reg)
{
    mmio_write32(base + IOAPIC_REGSEL, reg);
    return mmio_read32(base + IOAPIC_WIN);
}

static void ioapic_write(uint64_t base, uint32_t reg, uint32_t v)
{
    mmio_write32(base + IOAPIC_REGSEL, reg);
    mmio_write32(base + IOAPIC_WIN, v);
}

unsigned ioapic_max_gsi(void) { return (ioapic_read(IOAPIC_BASE, IOAPIC_REG_VER) >> 16) & 0xff; }

/* GSIs past the first I/O APIC's pins belong to QEMU microvm's second one; it is only
 * touched then, since other machines (vmlab) have nothing at its address. */
static uint64_t ioapic_for(unsigned gsi, unsigned *pin)
{
    unsigned max = ioapic_max_gsi();
    if (gsi <= max) {
        *pin = gsi;
        return IOAPIC_BASE;
    }
    *pin = gsi - (max + 1);
    return IOAPIC2_BASE;
}

void ioapic_route(unsigned gsi, uint8_t vector, int level_triggered)
{
    unsigned pin;
    uint64_t base = ioapic_for(gsi, &pin);
    ioapic_write(base, IOAPIC_REDTBL + 2 * pin + 1, lapic_id() << 24);
    ioapic_write(base, IOAPIC_REDTBL + 2 * pin, vector | (level_triggered ? RTE_LEVEL : 0));
}

void ioapic_mask(unsigned gsi, int masked)
{
    unsigned pin;
    uint64_t base = ioapic_for(gsi, &pin);
    uint32_t lo = ioapic_read(base, IOAPIC_REDTBL + 2 * pin);
    lo = masked ? (lo | RTE_MASKED) : (lo & ~RTE_MASKED);
    ioapic_write(base, IOAPIC_REDTBL + 2 * pin, lo);
}
