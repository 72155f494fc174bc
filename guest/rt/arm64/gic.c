/* The GIC for the arm64 guest programs, whichever one the FDT describes: GICv3
 * ("arm,gic-v3": distributor + redistributor, affinity routing, everything in group 1, the
 * ICC system-register CPU interface) or GICv2 ("arm,cortex-a15-gic", "arm,gic-400":
 * distributor + the memory-mapped GICC CPU interface, SPIs targeted at CPU 0 through
 * ITARGETSR, as Linux's v2 driver sets it up). Without an FDT: GICv3 at the vmlab arm64
 * memmap addresses (vmm/memmap.h). A v2 system may have no ICC registers at all (accessing
 * them is an undefined instruction), so nothing here touches them on v2. */
#include <libfdt.h>

#include "../rt_internal.h"

#define GICD_CTLR       0x0000
#define GICD_TYPER      0x0004
#define GICD_IGROUPR    0x0080
#define GICD_ISENABLER  0x0100
#define GICD_ICENABLER  0x0180
#define GICD_ITARGETSR  0x0800      /* v2: a byte per INTID, bit n = CPU interface n */
#define GICD_ICFGR      0x0c00
#define GICD_IROUTER    0x6000      /* v3 */
#define GICD_CTLR_RWP   (1u << 31)  /* v3 */
#define GICD_CTLR_ARE   (1u << 4)
#define GICD_CTLR_GRP1  (1u << 1)
#define GICD_CTLR_EN    (1u << 0)   /* v2: forward interrupts to the CPU interfaces */
#define GICR_WAKER      0x0014
#define GICR_SGI_OFFSET 0x10000     /* v3: the redistributor's SGI_base frame */
#define WAKER_SLEEP     (1u << 1)
#define WAKER_ASLEEP    (1u << 2)
#define GICC_CTLR       0x0000
#define GICC_PMR        0x0004
#define GICC_IAR        0x000c
#define GICC_EOIR       0x0010

static int ready;
static unsigned version = 3;
static uint64_t gicd = 0xfef00000ull;   /* vmlab's memmap when there is no FDT */
static uint64_t gicr = 0xfef20000ull;   /* v3: vCPU 0's RD_base */
static uint64_t gicc;                   /* v2: the CPU interface */

/* The first two regions of node's reg, in the root's cells (vmlab: 2 + 2). */
static int reg2(const void *fdt, int node, uint64_t base[2])
{
    int ac = fdt_address_cells(fdt, 0), sc = fdt_size_cells(fdt, 0), len = 0;
    const fdt32_t *reg = fdt_getprop(fdt, node, "reg", &len);

    if (!reg || ac < 1 || ac > 2 || sc < 0 || sc > 2 || len < (int)(2 * (ac + sc) * 4))
        return -1;
    for (int r = 0; r < 2; r++) {
        const fdt32_t *c = reg + r * (ac + sc);
        base[r] = ac == 2 ? (uint64_t)fdt32_to_cpu(c[0]) << 32 | fdt32_to_cpu(c[1])
                          : fdt32_to_cpu(c[0]);
    }
    return 0;
}

static void find_gic(void)
{
    const void *fdt = rt_fdt();
    uint64_t base[2];
    int node;

    if (!fdt)
        return;
    if ((node = fdt_node_offset_by_compatible(fdt, -1, "arm,gic-v3")) >= 0 &&
        reg2(fdt, node, base) == 0) {
        version = 3;
        gicd = base[0];
        gicr = base[1];
        return;
    }
    static const char *const v2[] = { "arm,cortex-a15-gic", "arm,gic-400" };
    for (unsigned i = 0; i < sizeof(v2) / sizeof(v2[0]); i++)
        if ((node = fdt_node_offset_by_compatible(fdt, -1, v2[i])) >= 0 &&
            reg2(fdt, node, base) == 0) {
            version = 2;
            gicd = base[0];
            gicc = base[1];
            return;
        }
}

static void wait_rwp(void)
{
    if (version != 3)
        return;
    for (int i = 0; i < 1000000 && (mmio_read32(gicd + GICD_CTLR) & GICD_CTLR_RWP); i++)
        rt_pause();
}

static void gic_init_v3(void)
{
    mmio_write32(gicd + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_GRP1);
    wait_rwp();
    mmio_write32(gicr + GICR_WAKER, mmio_read32(gicr + GICR_WAKER) & ~WAKER_SLEEP);
    for (int i = 0; i < 1000000 && (mmio_read32(gicr + GICR_WAKER) & WAKER_ASLEEP); i++)
        rt_pause();
    mmio_write32(gicr + GICR_SGI_OFFSET + GICD_IGROUPR, 0xffffffffu);  /* SGIs, PPIs: group 1 */
    uint64_t sre;
    __asm__ volatile("mrs %0, icc_sre_el1" : "=r"(sre));
    __asm__ volatile("msr icc_sre_el1, %0; isb" ::"r"(sre | 1));
    __asm__ volatile("msr icc_pmr_el1, %0" ::"r"(0xffull));
    __asm__ volatile("msr icc_igrpen1_el1, %0; isb" ::"r"(1ull));
}

/* v2 as a guest sees it (no security extensions): one group, enabled in the distributor
 * and the CPU interface; every priority passes the mask. */
static void gic_init_v2(void)
{
    mmio_write32(gicd + GICD_CTLR, GICD_CTLR_EN);
    mmio_write32(gicc + GICC_PMR, 0xff);
    mmio_write32(gicc + GICC_CTLR, 1);
}

void gic_init(void)
{
    if (ready)
        return;
    find_gic();
    if (version == 2)
        gic_init_v2();
    else
        gic_init_v3();
    ready = 1;
}

unsigned gic_version(void)
{
    gic_init();
    return version;
}

void gic_route_spi(unsigned spi, int level_triggered)
{
    unsigned intid = GIC_SPI_BASE + spi;
    uint64_t cfg = gicd + GICD_ICFGR + 4 * (intid / 16);
    uint32_t bit = 2u << (2 * (intid % 16));   /* 1: edge, 0: level */

    gic_init();
    if (version == 3)
        mmio_write32(gicd + GICD_IGROUPR + 4 * (intid / 32),
                     mmio_read32(gicd + GICD_IGROUPR + 4 * (intid / 32)) | 1u << (intid % 32));
    mmio_write32(cfg, level_triggered ? mmio_read32(cfg) & ~bit : mmio_read32(cfg) | bit);
    if (version == 3)
        mmio_write64(gicd + GICD_IROUTER + 8 * intid, 0);    /* affinity 0.0.0.0 */
    else
        mmio_write8(gicd + GICD_ITARGETSR + intid, 1);       /* CPU interface 0 */
    mmio_write32(gicd + GICD_ISENABLER + 4 * (intid / 32), 1u << (intid % 32));
    wait_rwp();
}

/* PPIs are per CPU: v3 in the redistributor's SGI frame, v2 in the distributor's banked
 * first enable register. */
void gic_enable_ppi(unsigned intid)
{
    gic_init();
    uint64_t base = version == 3 ? gicr + GICR_SGI_OFFSET : gicd;
    mmio_write32(base + GICD_ISENABLER, 1u << (intid % 32));
}

/* Acknowledge the highest pending interrupt: the IAR value, whose INTID (bits 23:0 on v3,
 * 9:0 on v2) is 1020..1023 when none was pending. */
uint32_t gic_ack(void)
{
    if (version == 2)
        return mmio_read32(gicc + GICC_IAR);
    uint64_t iar;
    __asm__ volatile("mrs %0, icc_iar1_el1" : "=r"(iar));
    return (uint32_t)iar;
}

unsigned gic_intid(uint32_t iar) { return version == 2 ? iar & 0x3ff : iar & 0xffffff; }

void gic_eoi(uint32_t iar)
{
    if (version == 2)
        mmio_write32(gicc + GICC_EOIR, iar);
    else
        __asm__ volatile("msr icc_eoir1_el1, %0; isb" ::"r"((uint64_t)iar) : "memory");
}

/* The arch-neutral interrupt calls of rt.h: GSI n is SPI n. */
void rt_intc_init(void) { gic_init(); }

void rt_irq_route(unsigned gsi, unsigned irq, int level_triggered)
{
    (void)irq;      /* the SPI's INTID, 32 + gsi (RT_GSI_IRQ) */
    gic_route_spi(gsi, level_triggered);
}

void rt_irq_mask(unsigned gsi, int masked)
{
    unsigned intid = GIC_SPI_BASE + gsi;
    gic_init();
    mmio_write32(gicd + (masked ? GICD_ICENABLER : GICD_ISENABLER) + 4 * (intid / 32),
                 1u << (intid % 32));
    wait_rwp();
}

/* GICD_TYPER.ITLinesNumber N (v2 and v3): INTIDs up to 32 * (N + 1) - 1, the SPIs from 32. */
unsigned rt_irq_max_gsi(void)
{
    gic_init();
    unsigned lines = mmio_read32(gicd + GICD_TYPER) & 0x1f;
    return 32 * (lines + 1) - 1 - GIC_SPI_BASE;
}
