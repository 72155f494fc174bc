/* Internals of the KVM CPU backend (vmm/kvm/), shared by its files only. */
#ifndef VMLAB_KVM_INTERNAL_H
#define VMLAB_KVM_INTERNAL_H

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) && defined(__has_include)
#if __has_include(<linux/kvm.h>)
#define VMLAB_HAVE_KVM 1
#endif
#endif
#ifndef VMLAB_HAVE_KVM
#define VMLAB_HAVE_KVM 0
#endif

#if VMLAB_HAVE_KVM
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "vmm/cpu_backend.h"
#include "vmm/memmap.h"

/* Addresses the backend claims in the MMIO hole for Intel's real-mode helpers (unused on
 * AMD): identity-map page, then the three TSS pages. Below 0xfeb00000, clear of the
 * virtio windows (0xd0000000 + 16 * 4 KiB), the IOAPIC and the LAPIC. */
#define KVM_IDENTITY_MAP_ADDR   0xfffbc000ULL
#define KVM_TSS_ADDR            0xfffbd000ULL

/* CPU_BOOT_LINUX64: the backend writes a GDT and identity page tables (0..4 GiB with
 * 2 MiB pages) into low RAM at these fixed addresses, clear of the MEMMAP_* boot data
 * (0x6000 start info, 0x7000 cmdline, 0x10000 FDT) and of the Linux zero page. */
#define KVM_BOOT_GDT_ADDR       0x1000ULL   /* 4 entries: null, null, code64 (0x10), data (0x18) */
#define KVM_BOOT_PML4_ADDR      0x2000ULL
#define KVM_BOOT_PDPT_ADDR      0x3000ULL
#define KVM_BOOT_PD_ADDR        0x8000ULL   /* 4 pages: 0x8000..0xbfff */
#define KVM_BOOT_LOW_END        0xc000ULL

/* The signal that kicks the vCPU thread out of KVM_RUN. Blocked on that thread except
 * inside KVM_RUN (KVM_SET_SIGNAL_MASK), so a kick sent while an exit is being handled
 * stays pending and makes the next KVM_RUN return at once: no lost wake-ups. */
#define KVM_KICK_SIGNAL         (SIGRTMIN + 2)
/* How often the run loop comes back to call env->poll and look at stop_requested. */
#define KVM_POLL_NS             4000000ULL

struct kvm_timer {
    int64_t id;
    uint64_t at_ns;
    clock_timer_fn fn;
    void *arg;
    struct kvm_timer *next;         /* sorted by (at_ns, id) */
};

/* One GSI's interrupt line in irqfd mode (kvm_irq.c); all fields under cpu->irq_lock. */
struct kvm_irq_pin {
    int irqfd, resamplefd;          /* -1 until the GSI is first raised */
    uint8_t level;                  /* the device's level */
    uint8_t asserted;               /* raised through irqfd; no resample seen since */
    uint8_t line_up;                /* raised with KVM_IRQ_LINE (the pin was edge) */
    uint8_t use_line;               /* irqfd setup failed for this GSI: KVM_IRQ_LINE */
};

struct cpu {
    const struct cpu_env *env;      /* the VMM's, read live: it sets poll after create */
    int kvm_fd, vm_fd, vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    int sync_regs;                  /* KVM_CAP_SYNC_REGS: RIP comes with every exit */
    struct irq_sink sink;
    struct clock clock;
    uint64_t t0_ns;                 /* CLOCK_MONOTONIC at create */
    int gic_fd;                     /* arm64: the in-kernel vGIC device, or -1 */
    int gic_version;                /* arm64: 3 or 2 */
    uint8_t irq_level[MEMMAP_IOAPIC_PINS];  /* KVM_IRQ_LINE mode: the device's level */

    /* Device interrupts through irqfds (kvm_irq.c); use_irqfd 0: KVM_IRQ_LINE. */
    int use_irqfd;
    pthread_mutex_t irq_lock;
    struct kvm_irq_pin pins[MEMMAP_IOAPIC_PINS];
    int irq_wake_fd;                /* eventfd: a resamplefd was added, or quit */
    int irq_quit;                   /* under irq_lock */
    pthread_t irq_thread;
    int irq_thread_started;

    /* Timers and the kick thread. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t kick_thread;
    int kick_thread_started;
    int quit;                       /* under lock */
    int running;                    /* under lock: the vCPU thread is inside run() */
    _Atomic int kicked;             /* written under lock: a kick is in flight */
    pthread_t vcpu_thread;
    struct kvm_timer *timers;       /* under lock */
    int64_t next_timer_id;
    uint64_t last_poll_ns;
    _Atomic uint64_t next_service_ns; /* earliest timer or poll deadline */

    /* The wake watcher (kvm_clock.c): polls env->wake_fd; when it turns readable, sets
     * io_ready and waits on io_cond until kvm__service has run env->poll. */
    pthread_cond_t io_cond;
    _Atomic int io_ready;           /* written under lock */
    int wake_quit_fd;               /* eventfd: the watcher ends */
    pthread_t wake_thread;
    int wake_thread_started;

    struct cpu_exit_record ring[CPU_RECENT_EXITS];
    unsigned ring_next, ring_count;
    unsigned idle_checks;           /* kicks in a row that found it halted, IF set, unwakeable */
};

/* Architecture parts of create (kvm_x86.c, kvm_arm64.c), called by kvm_cpu.c in this
 * order: after KVM_CREATE_VM (before memory slots and vCPUs), after KVM_CREATE_VCPU. */
extern const char *const kvm__arch_name;
int kvm__arch_vm_init(struct cpu *cpu);
int kvm__arch_vcpu_init(struct cpu *cpu);
uint64_t kvm__arch_tsc_khz(struct cpu *cpu);
/* The vCPU's instruction pointer (RIP, PC) for stop reports; 0 if it cannot be read. */
uint64_t kvm__arch_pc(struct cpu *cpu);
/* arm64 hung-guest check (kvm_run.c): 1 when the vCPU, stopped by a kick, waits in WFI
 * (*irqs_masked: PSTATE.I); 1 when its virtual or physical timer is enabled and unmasked
 * (or that cannot be read). */
int kvm__arch_in_wfi(struct cpu *cpu, int *irqs_masked);
int kvm__arch_timer_armed(struct cpu *cpu);
/* arm64: how the guest set up SPI gsi at the vGIC's distributor; 0 or -errno. */
int kvm__arch_spi_state(struct cpu *cpu, unsigned gsi, int *level_triggered, int *enabled);
/* The capabilities create needs, NULL-terminated by name. */
struct kvm_required_cap {
    int cap;
    const char *name;
};
extern const struct kvm_required_cap kvm__arch_required_caps[];

uint64_t kvm__now_ns(void *opaque);
int kvm__clock_init(struct cpu *cpu);
void kvm__clock_destroy(struct cpu *cpu);
/* Runs due timers and, when due, env->poll; on the vCPU thread. */
void kvm__service(struct cpu *cpu);
void kvm__set_running(struct cpu *cpu, int running);

/* Chooses irqfd or KVM_IRQ_LINE, sets cpu->sink; starts the resample thread. */
int kvm__irq_init(struct cpu *cpu);
void kvm__irq_destroy(struct cpu *cpu);
/* 1 when a device holds a line high on an unmasked IOAPIC pin (arm64: on any SPI): an
 * interrupt is on its way (an irqfd's injection runs later, in a kernel worker) or waits
 * for an EOI. */
int kvm__irq_line_held(struct cpu *cpu);

int kvm__boot(struct cpu *cpu, const struct cpu_boot *boot);
int kvm__run(struct cpu *cpu, struct cpu_stop *stop);
#endif

#endif
