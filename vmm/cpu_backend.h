/* The CPU backend interface: the software CPU (sim/) and KVM (vmm/kvm/) both implement it.
 * A backend runs guest code and hands every MMIO and port access to the buses in its
 * cpu_env; it never knows which devices sit there. */
#ifndef VMLAB_CPU_BACKEND_H
#define VMLAB_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "clock.h"
#include "guest_mem.h"
#include "irq.h"
#include "stats.h"

struct snapshot_writer;
struct snapshot_reader;

/* Why run() returned. */
enum cpu_stop_reason {
    CPU_STOP_REQUESTED,     /* cpu_env.stop_requested was set (guest exit device, control socket) */
    CPU_STOP_SHUTDOWN,      /* the guest powered off / reset itself */
    CPU_STOP_HALTED,        /* HLT with interrupts disabled and nothing that can wake it */
    CPU_STOP_FAULT,         /* unmapped access, invalid opcode, unhandled exception */
    CPU_STOP_TRIPLE_FAULT,
    CPU_STOP_INSN_LIMIT,    /* --max-insns reached */
    CPU_STOP_ERROR,         /* the backend itself failed */
};

#define CPU_RECENT_EXITS 16

struct cpu_exit_record {
    uint64_t insns;         /* instruction count when it happened */
    uint64_t rip;
    uint64_t addr;
    uint64_t value;
    uint8_t kind;           /* enum exit_kind */
    uint8_t size;
};

struct cpu_stop {
    enum cpu_stop_reason reason;
    uint64_t rip;
    uint64_t fault_addr;
    char detail[160];       /* one line: what happened, in the backend's words */
    /* The last CPU_RECENT_EXITS exits, oldest first, for the diagnostic screen. */
    struct cpu_exit_record recent[CPU_RECENT_EXITS];
    unsigned nrecent;
};

/* How the guest starts. */
enum cpu_boot_mode {
    CPU_BOOT_PVH32,         /* 32-bit flat protected mode, paging off, EBX = hvm_start_info */
    CPU_BOOT_LINUX64,       /* 64-bit mode with identity page tables, RSI = boot_params */
    CPU_BOOT_ARM64,         /* arm64 EL1h, MMU and caches off, DAIF masked, X0 = FDT (Linux
                             * arm64 booting.rst; guest programs start the same way) */
};

struct cpu_boot {
    enum cpu_boot_mode mode;
    uint64_t entry;
    uint64_t arg;           /* EBX for PVH, RSI for Linux, X0 for arm64 */
};

/* What the VMM hands a backend. The backend owns none of it. */
struct cpu_env {
    struct guest_mem *mem;
    struct bus *mmio;
    struct bus *pio;
    struct vm_stats *stats;
    volatile int *stop_requested;   /* devices and the control socket set it; run() returns */
    uint64_t max_insns;             /* 0: no limit */
    uint64_t seed;
    /* Software CPU: RDTSC reads the host's TSC instead of the virtual clock, for timing
     * guest-visible latency the way a peer VMM's guest sees it. Not deterministic. KVM
     * guests always read a host-derived TSC. */
    int host_tsc;
    /* KVM: something besides the guest's timers can wake an idle guest (a control socket,
     * another thread): a vCPU halted with interrupts on is then not hung. Read live. */
    int external_wakeups;
    /* Called from the run loop between slices of guest execution, on the vCPU thread:
     * where the VMM services its control socket. May be NULL. */
    void (*poll)(void *opaque);
    void *poll_opaque;
    /* KVM: an fd readable when host I/O waits for poll (the devices' poll_fd, the control
     * socket's and the input sockets, in one epoll set), or -1: the backend then runs poll at once rather than at its next periodic poll.
     * Asked on the first run (the devices exist by then). NULL: none. The software CPU
     * ignores it: host input comes only at its deterministic poll points. */
    int (*wake_fd)(void *opaque);   /* opaque: poll_opaque */
};

struct cpu;

struct cpu_backend_ops {
    const char *name;
    /* 0 if this backend can run here, else -errno with a reason in `why`. */
    int (*probe)(char *why, unsigned whylen);
    int (*create)(const struct cpu_env *env, struct cpu **out);
    int (*boot)(struct cpu *cpu, const struct cpu_boot *boot);
    /* Runs the guest until it must stop; fills *stop. Returns 0 or -errno on backend failure. */
    int (*run)(struct cpu *cpu, struct cpu_stop *stop);
    /* Interrupt lines of this machine (the emulated or in-kernel I/O APIC). */
    const struct irq_sink *(*irq_sink)(struct cpu *cpu);
    /* The clock devices read: virtual on the software CPU, host monotonic on KVM. */
    const struct clock *(*clock)(struct cpu *cpu);
    void (*destroy)(struct cpu *cpu);
    /* The guest TSC rate in kHz (put in the device tree for guests); on arm64 the generic
     * timer's (CNTFRQ_EL0). */
    uint64_t (*tsc_khz)(struct cpu *cpu);
    /* arm64 only (NULL elsewhere): the version of the in-kernel GIC it made, 3 or 2. */
    int (*gic_version)(struct cpu *cpu);
    /* Optional (NULL: snapshots not supported, e.g. KVM). Snapshots (vmm/SNAPSHOT.md):
     * save writes the vCPU, interrupt controllers and clock as fields of the current chunk;
     * it may refuse (-ENOTSUP, message) when the vCPU is in a state it cannot capture.
     * restore reads them back into a created, not booted vCPU (guest RAM still zero), re-arms
     * the backend's own timers and leaves the vCPU ready to run(). */
    int (*save)(struct cpu *cpu, struct snapshot_writer *w, char *err, size_t errlen);
    int (*restore)(struct cpu *cpu, struct snapshot_reader *r, char *err, size_t errlen);
    /* Re-creates a timer saved with clock id `id`, keeping its place among timers due at
     * the same time. Returns id, or -errno. */
    int64_t (*restore_timer)(struct cpu *cpu, uint64_t at_ns, int64_t id, clock_timer_fn fn,
                             void *arg);
};

extern const struct cpu_backend_ops sim_cpu_backend;   /* sim/ */
extern const struct cpu_backend_ops kvm_cpu_backend;   /* vmm/kvm/ */

#endif
