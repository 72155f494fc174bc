/* vmlab guest runtime: a freestanding x86_64 environment for small PVH test programs.
 * The same ELF boots on vmlab and on QEMU microvm (see guest/README.md). The arm64 build
 * (guest/rt/arm64/) keeps this API where the logic is the same; the x86-only parts (port
 * I/O, LAPIC, IOAPIC) give way to the GIC and the generic timer there. */
#ifndef GUEST_RT_H
#define GUEST_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- console (8250 UART at 0x3f8) and formatting ---- */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int snprintf(char *b, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *b, size_t n, const char *fmt, va_list ap);
void rt_putc(char c);
void rt_puts(const char *s);    /* no newline added */

/* ---- exit: isa-debug-exit port 0xf4, process status (code<<1)|1 ---- */
_Noreturn void rt_exit(unsigned code);

#define RT_EXIT_ASSERT 0x7f     /* GUEST_ASSERT failed */
#define RT_EXIT_EXCEPTION 0x7e  /* unhandled CPU exception */

/* ---- boot information ---- */
const char *rt_cmdline(void);   /* never NULL ("" when none) */
/* Finds "key=value" (or a bare "key", value "") among the cmdline words.
 * Returns 1 if present (value copied, truncated, NUL-terminated), else 0. */
int rt_cmdline_get(const char *key, char *out, size_t outlen);
const void *rt_fdt(void);       /* NULL when the VMM passed none */
uint64_t rt_ram_end(void);      /* end of the RAM region holding the program (from the memmap) */
extern char __image_end[];      /* first byte after the program image (.bss included) */

/* ---- string/memory (also used by libfdt) ---- */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t n);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
unsigned long strtoul(const char *s, char **end, int base);
unsigned long long strtoull(const char *s, char **end, int base);

/* ---- time ---- */
#if defined(__aarch64__)
/* The generic timer's virtual count (CNTVCT_EL0), the arm64 counterpart of the TSC. */
static inline uint64_t rt_rdtsc(void)
{
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
}
#else
static inline uint64_t rt_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}
#endif
/* TSC rate: FDT /cpus tsc-frequency-khz, else cmdline tsc_khz=N, else 0 (unknown). */
uint64_t rt_tsc_khz(void);

/* ---- MMIO and port I/O ---- */
static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t mmio_read64(uint64_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void mmio_write64(uint64_t a, uint64_t v) { *(volatile uint64_t *)a = v; }

#if defined(__aarch64__)
static inline void rt_mb(void) { __asm__ volatile("dsb sy" ::: "memory"); }
static inline void rt_rmb(void) { __asm__ volatile("dsb ld" ::: "memory"); }
static inline void rt_wmb(void) { __asm__ volatile("dsb st" ::: "memory"); }
static inline void rt_barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void rt_pause(void) { __asm__ volatile("yield"); }
#else
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0,%1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0,%1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0,%1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1,%0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(port)); return v; }

static inline void rt_mb(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void rt_rmb(void) { __asm__ volatile("lfence" ::: "memory"); }
static inline void rt_wmb(void) { __asm__ volatile("sfence" ::: "memory"); }
static inline void rt_barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void rt_pause(void) { __asm__ volatile("pause"); }

#endif

/* ---- interrupts ---- */
#if defined(__aarch64__)
/* Saved by the vector stubs (guest/rt/arm64/boot.S). */
struct rt_irq_frame {
    uint64_t x[31];
    uint64_t elr, spsr;
    uint64_t vector;        /* IRQs: the GIC INTID; exceptions: the vector-table entry */
    uint64_t esr, far;      /* synchronous exceptions: ESR_EL1 and FAR_EL1 */
};
typedef void (*rt_handler_fn)(struct rt_irq_frame *f);

/* Install fn for GIC INTID 0..255 (NULL: counted as spurious). The runtime acknowledges
 * (v3 ICC_IAR1, v2 GICC_IAR) before and ends (ICC_EOIR1, GICC_EOIR) after the handler. */
void rt_set_handler(unsigned intid, rt_handler_fn fn);
/* Synchronous exceptions from EL1 by ESR exception class (ESR_EL1 bits 31:26): fn gets the
 * frame with esr and far; changes to elr and x[] take effect on eret. Without a handler
 * (NULL), a synchronous exception or SError reports ESR/ELR/FAR and exits 0x7e. */
#define RT_EC_UNKNOWN   0x00    /* e.g. UDF: an undefined instruction */
#define RT_EC_DABT_CUR  0x25    /* data abort taken without a change of EL */
#define RT_EC_BRK       0x3c    /* BRK #imm16 (imm16 in ESR bits 15:0) */
void rt_set_sync_handler(unsigned ec, rt_handler_fn fn);
void rt_irq_enable(void);       /* DAIF.I clear */
void rt_irq_disable(void);      /* DAIF.I set */
void rt_halt(void);             /* wfi, then IRQs on: returns after an interrupt */
uint64_t rt_spurious_count(void);

/* ---- the GIC: v3 or v2, whichever the FDT describes (guest/rt/arm64/gic.c) ---- */
#define GIC_SPI_BASE 32u
#define GIC_PPI_VTIMER 27u      /* the EL1 virtual timer's PPI */
void gic_init(void);            /* distributor + this CPU's redistributor/CPU interface, all priorities */
void gic_route_spi(unsigned spi, int level_triggered);  /* to this CPU, enabled */
void gic_enable_ppi(unsigned intid);
unsigned gic_version(void);     /* 3 or 2 */
#else
/* Pushed by the common entry stub; the CPU frame (rip..ss) is last. */
struct rt_irq_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code, rip, cs, rflags, rsp, ss;
};
typedef void (*rt_handler_fn)(struct rt_irq_frame *f);

/* Install fn for vector 0..255 (NULL restores the default: exceptions report and exit 0x7e,
 * other vectors are counted as spurious and get a LAPIC EOI). Changes to f->rip etc. take
 * effect on return. Handlers for LAPIC/IOAPIC interrupts must call lapic_eoi(). */
void rt_set_handler(unsigned vector, rt_handler_fn fn);
void rt_irq_enable(void);       /* sti */
void rt_irq_disable(void);      /* cli */
void rt_halt(void);             /* sti; hlt: returns after an interrupt, with IF=1 */
uint64_t rt_spurious_count(void);

/* ---- local APIC (xAPIC MMIO at 0xfee00000) ---- */
#define LAPIC_BASE 0xfee00000ull
#define LAPIC_SPURIOUS_VECTOR 0xff
void lapic_init(void);          /* software-enable via SVR, TPR 0, LINT/error masked */
void lapic_eoi(void);
uint32_t lapic_id(void);
/* divide: 1, 2, 4, 8, 16, 32, 64 or 128 */
void lapic_timer_start(uint8_t vector, uint32_t initial_count, int periodic, unsigned divide);
void lapic_timer_stop(void);
uint32_t lapic_timer_current(void);

/* ---- I/O APIC (0xfec00000) ---- */
#define IOAPIC_BASE 0xfec00000ull
/* Routes gsi to vector on the boot CPU (fixed delivery, physical, active high), unmasked. */
void ioapic_route(unsigned gsi, uint8_t vector, int level_triggered);
void ioapic_mask(unsigned gsi, int masked);
unsigned ioapic_max_gsi(void);  /* from the version register */

#endif

/* ---- arch-neutral interrupt sources (timer, uartirq, idle, vvsock) ----
 * An interrupt is named by the number rt_set_handler takes: on x86 the vector the program
 * picks, on arm64 the GIC INTID the source has (the macros below give it). x86 handlers end
 * the interrupt with rt_irq_eoi() (the LAPIC EOI); on arm64 the runtime ends it, so
 * rt_irq_eoi() does nothing there.
 * The CPU timer: x86 the LAPIC timer, arm64 the EL1 virtual timer (CNTV, PPI 27). Counts
 * are the LAPIC's: QEMU's and KVM's LAPIC timers count at 1 GHz / divide, so on arm64 a
 * count of C with divide D is C * D ns of the virtual counter (CNTFRQ_EL0); periodic mode
 * is the runtime re-arming the compare value from the timer's interrupt.
 * Device lines: GSI n, x86 an I/O APIC pin, arm64 the SPI n (INTID 32 + n). */
#define RT_UART_GSI 4           /* the 8250's line on both machines (memmap.h) */
#if defined(__aarch64__)
#define RT_TIMER_IRQ(x86_vector) GIC_PPI_VTIMER
#define RT_GSI_IRQ(gsi, x86_vector) (GIC_SPI_BASE + (gsi))
void rt_intc_init(void);        /* gic_init() */
void rt_irq_eoi(void);
void rt_irq_route(unsigned gsi, unsigned irq, int level_triggered);
void rt_irq_mask(unsigned gsi, int masked);
unsigned rt_irq_max_gsi(void);  /* from GICD_TYPER */
void rt_timer_init(void);       /* the GIC and the timer's PPI */
void rt_timer_start(unsigned irq, uint32_t count, int periodic, unsigned divide);
void rt_timer_stop(void);
uint32_t rt_timer_current(void);    /* counts left; 0 once a one-shot has fired */
#else
#define RT_TIMER_IRQ(x86_vector) (x86_vector)
#define RT_GSI_IRQ(gsi, x86_vector) (x86_vector)
static inline void rt_intc_init(void) { lapic_init(); }
static inline void rt_irq_eoi(void) { lapic_eoi(); }
static inline void rt_irq_route(unsigned gsi, unsigned irq, int level_triggered)
{
    ioapic_route(gsi, (uint8_t)irq, level_triggered);
}
static inline void rt_irq_mask(unsigned gsi, int masked) { ioapic_mask(gsi, masked); }
static inline unsigned rt_irq_max_gsi(void) { return ioapic_max_gsi(); }
static inline void rt_timer_init(void) { lapic_init(); }
static inline void rt_timer_start(unsigned irq, uint32_t count, int periodic, unsigned divide)
{
    lapic_timer_start((uint8_t)irq, count, periodic, divide);
}
static inline void rt_timer_stop(void) { lapic_timer_stop(); }
static inline uint32_t rt_timer_current(void) { return lapic_timer_current(); }
#endif

/* ---- the 8250 UART's registers (x86: ports 0x3f8.., arm64: MMIO 0xfe000000..) ---- */
#if defined(__aarch64__)
#define RT_UART_MMIO 0xfe000000ull
static inline uint8_t rt_uart_in(unsigned reg) { return mmio_read8(RT_UART_MMIO + reg); }
static inline void rt_uart_out(unsigned reg, uint8_t v) { mmio_write8(RT_UART_MMIO + reg, v); }
#else
#define RT_UART_PORT 0x3f8
static inline uint8_t rt_uart_in(unsigned reg) { return inb((uint16_t)(RT_UART_PORT + reg)); }
static inline void rt_uart_out(unsigned reg, uint8_t v) { outb((uint16_t)(RT_UART_PORT + reg), v); }
#endif

/* ---- assertions: print and exit with status RT_EXIT_ASSERT ---- */
_Noreturn void rt_assert_fail(const char *file, int line, const char *expr, const char *vals);
#define GUEST_ASSERT(c)                                                                 \
    do {                                                                                \
        if (!(c))                                                                       \
            rt_assert_fail(__FILE__, __LINE__, #c, (const char *)0);                    \
    } while (0)
#define GUEST_ASSERT_EQ(a, b)                                                           \
    do {                                                                                \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
        if (a_ != b_) {                                                                 \
            char v_[64];                                                                \
            snprintf(v_, sizeof v_, "0x%llx != 0x%llx", a_, b_);                        \
            rt_assert_fail(__FILE__, __LINE__, #a " == " #b, v_);                       \
        }                                                                               \
    } while (0)

int main(int argc, char **argv);  /* provided by each program */

#endif
