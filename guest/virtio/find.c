/* Where are the virtio-mmio transports? vmlab passes a flattened device tree; QEMU microvm
 * with acpi=off and Firecracker put virtio_mmio.device= words on the cmdline; QEMU microvm
 * with ACPI on says nothing outside ACPI, so there we scan its fixed transport area. */
#include "virtio.h"

#include "../rt/rt.h"

#define MAX_LOCS 32

/* QEMU microvm: transports at 0xfeb00000 + slot * 0x200, 24 with ACPI on (IRQ = GSI
 * 24 + slot on the second IOAPIC), 8 with acpi=off (IRQ 5 + slot). */
#define QEMU_VMMIO_BASE   0xfeb00000ull
#define QEMU_VMMIO_STRIDE 0x200ull
#define QEMU_VMMIO_SLOTS  24

static uint32_t be32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* ---- FDT: just enough of the format to find "virtio,mmio" nodes ---- */
#define FDT_MAGIC      0xd00dfeedu
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP        4
#define FDT_END        9

struct fdt_node_state {
    int compat;
    int has_reg;
    uint64_t base, size;
    unsigned irq;
};

static int compat_has(const char *v, uint32_t len, const char *want)
{
    uint32_t i = 0;
    while (i < len) {   /* a NUL-separated string list */
        const char *s = v + i;
        size_t n = strnlen(s, len - i);
        if (!strcmp(s, want))
            return 1;
        i += (uint32_t)n + 1;
    }
    return 0;
}

static uint64_t cells(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 32 | be32(p + 4 * i);
    return v;
}

static int fdt_collect(const uint8_t *fdt, struct virtio_mmio_loc *locs, int max)
{
    if (be32(fdt) != FDT_MAGIC)
        return 0;
    uint32_t total = be32(fdt + 4), off_struct = be32(fdt + 8), off_strings = be32(fdt + 12);
    uint32_t size_struct = be32(fdt + 36);
    if (off_struct >= total || size_struct > total - off_struct)
        return 0;
    const uint8_t *p = fdt + off_struct, *end = p + size_struct;
    struct fdt_node_state st[16];
    int depth = -1, n = 0;
    while (p + 4 <= end) {
        uint32_t tok = be32(p);
        p += 4;
        if (tok == FDT_BEGIN_NODE) {
            size_t len = strnlen((const char *)p, (size_t)(end - p));
            p += (len + 4) & ~(size_t)3;
            if (++depth >= 16)
                return n;
            memset(&st[depth], 0, sizeof st[depth]);
        } else if (tok == FDT_END_NODE) {
            if (depth < 0)
                return n;
            if (st[depth].compat && st[depth].has_reg && n < max) {
                locs[n].base = st[depth].base;
                locs[n].size = st[depth].size;
                locs[n].irq = st[depth].irq;
                locs[n].source = VIRTIO_LOC_FDT;
                n++;
            }
            depth--;
        } else if (tok == FDT_PROP) {
            if (p + 8 > end)
                return n;
            uint32_t len = be32(p), nameoff = be32(p + 4);
            const uint8_t *val = p + 8;
            if (len > (size_t)(end - val))
                return n;
            p = val + ((len + 3) & ~3u);
            if (depth < 0 || off_strings + nameoff >= total)
                continue;
            const char *name = (const char *)fdt + off_strings + nameoff;
            struct fdt_node_state *s = &st[depth];
            /* vmlab uses #address-cells = #size-cells = 2; accept 1/1 as well */
            if (!strcmp(name, "compatible"))
                s->compat = compat_has((const char *)val, len, "virtio,mmio");
            else if (!strcmp(name, "reg") && (len == 16 || len == 8)) {
                unsigned c = len / 8;
                s->base = cells(val, c);
                s->size = cells(val + 4 * c, c);
                s->has_reg = 1;
            } else if (!strcmp(name, "interrupts") && len >= 4)
#if defined(__aarch64__)
                /* the GIC's <type SPI-number flags> */
                s->irq = len == 12 ? be32(val + 4) : be32(val);
#else
                s->irq = be32(val);
#endif
        } else if (tok == FDT_NOP) {
            continue;
        } else {
            break;  /* FDT_END or garbage */
        }
    }
    return n;
}

/* ---- cmdline: virtio_mmio.device=<size>[KMG]@<base>:<irq>[:<id>] ---- */
static int parse_device_word(const char *w, struct virtio_mmio_loc *l)
{
    char *e;
    uint64_t size = strtoull(w, &e, 0);
    if (*e == 'K' || *e == 'k')
        size <<= 10, e++;
    else if (*e == 'M' || *e == 'm')
        size <<= 20, e++;
    else if (*e == 'G' || *e == 'g')
        size <<= 30, e++;
    if (*e != '@')
        return -1;
    uint64_t base = strtoull(e + 1, &e, 0);
    if (*e != ':')
        return -1;
    unsigned long irq = strtoul(e + 1, &e, 0);
    if (*e != ' ' && *e != ':' && *e != 0)
        return -1;
    l->base = base;
    l->size = size;
    l->irq = (unsigned)irq;
    l->source = VIRTIO_LOC_CMDLINE;
    return 0;
}

static int cmdline_collect(struct virtio_mmio_loc *locs, int max)
{
    static const char key[] = "virtio_mmio.device=";
    const char *p = rt_cmdline();
    int n = 0;
    while (*p && n < max) {
        while (*p == ' ')
            p++;
        if (!strncmp(p, key, sizeof key - 1)) {
            if (parse_device_word(p + sizeof key - 1, &locs[n]) == 0)
                n++;
            else
                printf("virtio: ignoring malformed cmdline word at \"%.40s\"\n", p);
        }
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

/* ---- QEMU microvm scan; only when nothing told us (the area is unmapped on vmlab) ---- */
static int scan_collect(struct virtio_mmio_loc *locs, int max)
{
    int present = 0, n = 0;
    for (int i = 0; i < QEMU_VMMIO_SLOTS; i++)
        present += mmio_read32(QEMU_VMMIO_BASE + i * QEMU_VMMIO_STRIDE) == VMMIO_MAGIC;
    unsigned irq_base = present > 8 ? 24 : 5;
    /* Highest slot first: that is where QEMU puts the first device. */
    for (int i = QEMU_VMMIO_SLOTS - 1; i >= 0 && n < max; i--) {
        uint64_t b = QEMU_VMMIO_BASE + i * QEMU_VMMIO_STRIDE;
        if (mmio_read32(b) != VMMIO_MAGIC)
            continue;
        locs[n].base = b;
        locs[n].size = QEMU_VMMIO_STRIDE;
        locs[n].irq = irq_base + (unsigned)i;
        locs[n].source = VIRTIO_LOC_SCAN;
        n++;
    }
    return n;
}

const char *virtio_loc_source_name(enum virtio_loc_source s)
{
    return s == VIRTIO_LOC_FDT ? "fdt" : s == VIRTIO_LOC_CMDLINE ? "cmdline" : "scan";
}

int virtio_find(uint32_t device_id, unsigned index, struct virtio_mmio_loc *out)
{
    static struct virtio_mmio_loc locs[MAX_LOCS];
    int n = 0;
    if (rt_fdt())
        n = fdt_collect(rt_fdt(), locs, MAX_LOCS);
    if (n == 0)
        n = cmdline_collect(locs, MAX_LOCS);
    if (n == 0 && !rt_fdt())
        n = scan_collect(locs, MAX_LOCS);
    for (int i = 0; i < n; i++) {
        if (mmio_read32(locs[i].base + VMMIO_MAGIC_VALUE) != VMMIO_MAGIC)
            continue;
        locs[i].device_id = mmio_read32(locs[i].base + VMMIO_DEVICE_ID);
        if (locs[i].device_id != device_id)
            continue;
        if (index-- == 0) {
            *out = locs[i];
            return 0;
        }
    }
    return -VIRTIO_ENODEV;
}
