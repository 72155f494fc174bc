/* GICv3 driver for the arm64 guest programs: distributor and redistributor at the vmlab
 * arm64 memmap addresses (vmm/memmap.h), affinity routing, everything in group 1. */
#include "../rt_internal.h"

#define GICD_BASE 0xfef00000ull
#define GICR_BASE 0xfef20000ull              /* vCPU 0's RD_base; SGI_base 64 KiB on */
#define GICR_SGI  (GICR_BASE + 0x10000)

#define GICD_CTLR       0x0000
#define GICD_IGROUPR    0x0080
#define GICD_ISENABLER  0x0100
#define GICD_ICFGR      0x0c00
#define GICD_IROUTER    0x6000
#define GICD_CTLR_RWP   (1u << 31)
#define GICD_CTLR_ARE   (1u << 4)
#define GICD_CTLR_GRP1  (1u << 1)
#define GICR_WAKER      0x0014
#define WAKER_SLEEP     (1u << 1)
#define WAKER_ASLEEP    (1u << 2)

static int ready;

static void wait_rwp(void)
{
    for (int i = 0; i < 1000000 && (mmio_read32(GICD_BASE + GICD_CTLR) & GICD_CTLR_RWP); i++)
        rt_pause();
}

void gic_init(void)
{
    if (ready)
        return;
    mmio_write32(GICD_BASE + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_GRP1);
    wait_rwp();
    mmio_write32(GICR_BASE + GICR_WAKER, mmio_read32(GICR_BASE + GICR_WAKER) & ~WAKER_SLEEP);
    for (int i = 0; i < 1000000 && (mmio_read32(GICR_BASE + GICR_WAKER) & WAKER_ASLEEP); i++)
        rt_pause();
    mmio_write32(GICR_SGI + GICD_IGROUPR, 0xffffffffu);     /* SGIs and PPIs: group 1 */
    uint64_t sre;
    __asm__ volatile("mrs %0, icc_sre_el1" : "=r"(sre));
    __asm__ volatile("msr icc_sre_el1, %0; isb" ::"r"(sre | 1));
    __asm__ volatile("msr icc_pmr_el1, %0" ::"r"(0xffull));
    __asm__ volatile("msr icc_igrpen1_el1, %0; isb" ::"r"(1ull));
    ready = 1;
}

void gic_route_spi(unsigned spi, int level_triggered)
{
    unsigned intid = GIC_SPI_BASE + spi;
    uint64_t cfg = GICD_BASE + GICD_ICFGR + 4 * (intid / 16);
    uint32_t bit = 2u << (2 * (intid % 16));   /* 1: edge, 0: level */

    mmio_write32(GICD_BASE + GICD_IGROUPR + 4 * (intid / 32),
                 mmio_read32(GICD_BASE + GICD_IGROUPR + 4 * (intid / 32)) | 1u << (intid % 32));
    mmio_write32(cfg, level_triggered ? mmio_read32(cfg) & ~bit : mmio_read32(cfg) | bit);
    mmio_write64(GICD_BASE + GICD_IROUTER + 8 * intid, 0);    /* affinity 0.0.0.0 */
    mmio_write32(GICD_BASE + GICD_ISENABLER + 4 * (intid / 32), 1u << (intid % 32));
    wait_rwp();
}

void gic_enable_ppi(unsigned intid)
{
    mmio_write32(GICR_SGI + GICD_ISENABLER, 1u << (intid % 32));
}

/* The arch-neutral interrupt calls of rt.h: GSI n is SPI n. */
#define GICD_TYPER      0x0004
#define GICD_ICENABLER  0x0180

void rt_intc_init(void) { gic_init(); }

void rt_irq_route(unsigned gsi, unsigned irq, int level_triggered)
{
    (void)irq;      /* the SPI's INTID, 32 + gsi (RT_GSI_IRQ) */
    gic_init();
    gic_route_spi(gsi, level_triggered);
}

void rt_irq_mask(unsigned gsi, int masked)
{
    unsigned intid = GIC_SPI_BASE + gsi;
    mmio_write32(GICD_BASE + (masked ? GICD_ICENABLER : GICD_ISENABLER) + 4 * (intid / 32),
                 1u << (intid % 32));
    wait_rwp();
}

/* GICD_TYPER.ITLinesNumber N: INTIDs up to 32 * (N + 1) - 1, the SPIs from 32. */
unsigned rt_irq_max_gsi(void)
{
    unsigned lines = mmio_read32(GICD_BASE + GICD_TYPER) & 0x1f;
    return 32 * (lines + 1) - 1 - GIC_SPI_BASE;
}
