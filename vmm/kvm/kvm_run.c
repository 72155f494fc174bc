/* The KVM run loop: KVM_RUN until something needs the VMM, hand port and MMIO exits to
 * the buses, run due timers and env->poll between exits, stop on request, shutdown or
 * error. With the in-kernel irqchip the kernel handles HLT, the LAPIC and the IOAPIC. */
#include "kvm_internal.h"

#if VMLAB_HAVE_KVM
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define RFLAGS_IF 0x200ULL

static uint64_t exit_rip(struct cpu *cpu)
{
#if defined(__x86_64__)
    if (cpu->sync_regs)
        return cpu->run->s.regs.regs.rip;
#else
    (void)cpu;
#endif
    return 0;
}

static void record_exit(struct cpu *cpu, enum exit_kind kind, uint64_t addr, uint64_t value,
                        unsigned size)
{
    if (cpu->env->stats)
        cpu->env->stats->exits[kind]++;
    struct cpu_exit_record *e = &cpu->ring[cpu->ring_next];
    *e = (struct cpu_exit_record){
        .insns = 0,         /* KVM does not count instructions */
        .rip = exit_rip(cpu),
        .addr = addr,
        .value = value,
        .kind = (uint8_t)kind,
        .size = (uint8_t)size,
    };
    cpu->ring_next = (cpu->ring_next + 1) % CPU_RECENT_EXITS;
    if (cpu->ring_count < CPU_RECENT_EXITS)
        cpu->ring_count++;
}

static void handle_io(struct cpu *cpu)
{
    struct kvm_run *run = cpu->run;
    unsigned size = run->io.size;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;

    /* count > 1 for rep ins/outs: one bus access per element. */
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        uint64_t v = 0;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&v, data, size);
            bus_write(cpu->env->pio, run->io.port, size, v);
            record_exit(cpu, EXIT_PIO_OUT, run->io.port, v, size);
        } else {
            bus_read(cpu->env->pio, run->io.port, size, &v);
            memcpy(data, &v, size);
            record_exit(cpu, EXIT_PIO_IN, run->io.port, v, size);
        }
    }
}

/* Returns 1 when handled, 0 for an access outside RAM and the MMIO hole: a guest fault,
 * as on the software CPU (which maps only RAM and the hole). */
static int handle_mmio(struct cpu *cpu)
{
    struct kvm_run *run = cpu->run;
    unsigned len = run->mmio.len;
    uint64_t addr = run->mmio.phys_addr;
    uint64_t v = 0;

    if (addr < MEMMAP_MMIO_HOLE_START || addr >= MEMMAP_MMIO_HOLE_END)
        return 0;

    if (len > sizeof(run->mmio.data))
        len = sizeof(run->mmio.data);
    if (run->mmio.is_write) {
        memcpy(&v, run->mmio.data, len < 8 ? len : 8);
        /* A size the bus refuses (e.g. 3, 16) is an ignored access, as on real hardware
         * with nothing decoding it. */
        bus_write(cpu->env->mmio, addr, len, v);
        record_exit(cpu, EXIT_MMIO_WRITE, addr, v, len);
    } else {
        bus_read(cpu->env->mmio, addr, len, &v);
        if (len <= 8) {
            memcpy(run->mmio.data, &v, len);
        } else {
            memset(run->mmio.data, 0xff, len);
        }
        record_exit(cpu, EXIT_MMIO_READ, addr, v, len);
    }
    return 1;
}

static void fill_stop(struct cpu *cpu, struct cpu_stop *stop, enum cpu_stop_reason reason,
                      const char *detail)
{
    stop->reason = reason;
    stop->rip = kvm__arch_pc(cpu);
    stop->fault_addr = 0;
    snprintf(stop->detail, sizeof(stop->detail), "%s", detail ? detail : "");
    unsigned n = cpu->ring_count;
    unsigned first = (cpu->ring_next + CPU_RECENT_EXITS - n) % CPU_RECENT_EXITS;
    for (unsigned i = 0; i < n; i++)
        stop->recent[i] = cpu->ring[(first + i) % CPU_RECENT_EXITS];
    stop->nrecent = n;
    if (cpu->env->stats)
        cpu->env->stats->virtual_ns = kvm__now_ns(cpu);
}

/* Something besides the vCPU's own interrupt controller may wake a halted vCPU: a VMM timer
 * (devices act only from timers, exits and the poll), something outside (env->external_wakeups:
 * a control socket), or a device line held high (kvm__irq_line_held). */
static int outside_wakeup_possible(struct cpu *cpu)
{
    pthread_mutex_lock(&cpu->lock);
    int timers = cpu->timers != NULL;
    pthread_mutex_unlock(&cpu->lock);
    return timers || cpu->env->external_wakeups || kvm__irq_line_held(cpu);
}

#if defined(__x86_64__)
/* Local APIC register offsets in struct kvm_lapic_state (the xAPIC page layout). */
#define LAPIC_IRR       0x200
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TMICT     0x380
#define LAPIC_TMCCT     0x390
#define LVT_MASKED      (1u << 16)
#define LVT_MODE(v)     (((v) >> 17) & 3u)      /* 0 one-shot, 1 periodic, 2 TSC-deadline */

static uint32_t lapic_reg(const struct kvm_lapic_state *s, unsigned off)
{
    uint32_t v;
    memcpy(&v, s->regs + off, sizeof(v));
    return v;
}

/* The in-kernel LAPIC can still wake the vCPU: its timer runs, or an interrupt waits in
 * the IRR. TSC-deadline mode counts as running (the deadline MSR is not looked at). */
static int lapic_can_wake(struct cpu *cpu)
{
    struct kvm_lapic_state s;

    if (ioctl(cpu->vcpu_fd, KVM_GET_LAPIC, &s) < 0)
        return 1;                       /* cannot tell: never call a guest hung on a guess */
    for (unsigned i = 0; i < 8; i++)
        if (lapic_reg(&s, LAPIC_IRR + 16 * i))
            return 1;
    uint32_t lvt = lapic_reg(&s, LAPIC_LVT_TIMER);
    if (lvt & LVT_MASKED)
        return 0;
    switch (LVT_MODE(lvt)) {
    case 0: return lapic_reg(&s, LAPIC_TMCCT) != 0;
    case 1: return lapic_reg(&s, LAPIC_TMICT) != 0;
    default: return 1;
    }
}

/* With the in-kernel irqchip the kernel sleeps through HLT; only a kick shows us a halted
 * vCPU. It is hung, as on the software CPU, when nothing can wake it: IF clear (we send no
 * NMIs), or IF set with no VMM timer pending (devices only act from timers, exits and the
 * poll), nothing outside that may wake it (env->external_wakeups: a control socket), a
 * LAPIC that can raise nothing and no device line held high (a level line raised through
 * an irqfd reaches the IRR only when a kernel worker runs: under nested KVM a uartirq
 * guest was once called hung between the two). The IF-set case must hold at two kicks in a row:
 * a LAPIC timer that expired just before the kick shows neither in the count nor yet in
 * the IRR until the vCPU runs again. */
static int halted_for_good(struct cpu *cpu, const char **why)
{
    struct kvm_mp_state mp;
    struct kvm_regs regs;

    if (ioctl(cpu->vcpu_fd, KVM_GET_MP_STATE, &mp) < 0 || mp.mp_state != KVM_MP_STATE_HALTED ||
        ioctl(cpu->vcpu_fd, KVM_GET_REGS, &regs) < 0) {
        cpu->idle_checks = 0;
        return 0;
    }
    if (!(regs.rflags & RFLAGS_IF)) {
        *why = "HLT with interrupts disabled: nothing can wake the vCPU";
        return 1;
    }
    if (outside_wakeup_possible(cpu) || lapic_can_wake(cpu)) {
        cpu->idle_checks = 0;
        return 0;
    }
    *why = "HLT with interrupts enabled and no timer armed: nothing can wake the vCPU";
    return ++cpu->idle_checks >= 2;
}

#else
/* arm64: the kernel runs WFI for the guest, and KVM_GET_MP_STATE says only runnable or
 * stopped, so only a kick shows a waiting vCPU: KVM_RUN returns with the PC past the WFI
 * (kvm_arm64.c). It is hung, as on x86, when nothing can wake it: no VMM timer pending, no
 * external wakeups, no device line held high, and neither of its own timers enabled and
 * unmasked. WFI wakes for a pending interrupt whatever PSTATE.I says, so masked IRQs alone
 * decide nothing. The kick itself ends the WFI (a spurious wake-up, which the architecture
 * allows guests to see), so the vCPU must be found back at the WFI at two kicks in a row
 * with no exit between them. */
static int halted_for_good(struct cpu *cpu, const char **why)
{
    int masked = 0;

    if (!kvm__arch_in_wfi(cpu, &masked)) {
        cpu->idle_checks = 0;
        return 0;
    }
    if (outside_wakeup_possible(cpu) || kvm__arch_timer_armed(cpu)) {
        cpu->idle_checks = 0;
        return 0;
    }
    *why = masked ? "WFI with interrupts masked and no timer armed: nothing can wake the vCPU"
                  : "WFI with interrupts enabled and no timer armed: nothing can wake the vCPU";
    return ++cpu->idle_checks >= 2;
}
#endif

static const char *internal_suberror(uint32_t s)
{
    switch (s) {
    case KVM_INTERNAL_ERROR_EMULATION: return "instruction emulation failed";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
    default: return "internal error";
    }
}

/* Handles one exit. Returns 1 to keep running, 0 when *stop is filled, -errno on failure. */
static int handle_exit(struct cpu *cpu, struct cpu_stop *stop)
{
    struct kvm_run *run = cpu->run;
    char detail[160];

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(cpu);
        return 1;
    case KVM_EXIT_MMIO:
        if (handle_mmio(cpu))
            return 1;
        snprintf(detail, sizeof(detail), "unmapped %s at %#llx",
                 run->mmio.is_write ? "write" : "read", (unsigned long long)run->mmio.phys_addr);
        fill_stop(cpu, stop, CPU_STOP_FAULT, detail);
        stop->fault_addr = run->mmio.phys_addr;
        return 0;
    case KVM_EXIT_INTR:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
        return 1;
    case KVM_EXIT_HLT:
        /* Only without an in-kernel irqchip, which this backend always creates. */
        record_exit(cpu, EXIT_HLT, 0, 0, 0);
        fill_stop(cpu, stop, CPU_STOP_HALTED, "kvm: HLT exit");
        return 0;
    case KVM_EXIT_SHUTDOWN:
        /* KVM reports a triple fault (and nothing else) as SHUTDOWN. */
        fill_stop(cpu, stop, CPU_STOP_TRIPLE_FAULT, "kvm: triple fault (KVM_EXIT_SHUTDOWN)");
        return 0;
    case KVM_EXIT_SYSTEM_EVENT:
        snprintf(detail, sizeof(detail), "kvm: system event %u", run->system_event.type);
        fill_stop(cpu, stop, CPU_STOP_SHUTDOWN, detail);
        return 0;
    case KVM_EXIT_INTERNAL_ERROR: {
        /* Emulation failures come from what the guest executed (e.g. code fetched from a
         * device window): a guest fault. The rest are the backend's problem. */
        uint32_t sub = run->internal.suberror;
        snprintf(detail, sizeof(detail), "kvm: %s (suberror %u, %u data words)",
                 internal_suberror(sub), sub, run->internal.ndata);
        fill_stop(cpu, stop, sub == KVM_INTERNAL_ERROR_EMULATION ? CPU_STOP_FAULT
                                                                  : CPU_STOP_ERROR, detail);
        return 0;
    }
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(detail, sizeof(detail), "kvm: VM entry failed (hardware reason 0x%llx)",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        fill_stop(cpu, stop, CPU_STOP_ERROR, detail);
        return 0;
    default:
        snprintf(detail, sizeof(detail), "kvm: unexpected exit reason %u", run->exit_reason);
        fill_stop(cpu, stop, CPU_STOP_ERROR, detail);
        return 0;
    }
}

/* Blocks the kick signal on this thread and lets KVM unblock it inside KVM_RUN only. */
static int kick_mask_enter(struct cpu *cpu, sigset_t *saved)
{
    sigset_t block, inside;
    sigemptyset(&block);
    sigaddset(&block, KVM_KICK_SIGNAL);
    int r = pthread_sigmask(SIG_BLOCK, &block, saved);
    if (r)
        return -r;
    inside = *saved;
    sigdelset(&inside, KVM_KICK_SIGNAL);
    /* The mask is a flexible array after the length: room for the kernel's 64-bit
     * sigset_t on x86_64. */
    union {
        struct kvm_signal_mask m;
        uint8_t raw[sizeof(struct kvm_signal_mask) + 8];
    } km;
    km.m.len = 8;
    memcpy(km.m.sigset, &inside, 8);
    if (ioctl(cpu->vcpu_fd, KVM_SET_SIGNAL_MASK, &km) < 0) {
        r = -errno;
        pthread_sigmask(SIG_SETMASK, saved, NULL);
        return r;
    }
    return 0;
}

/* KVM_RUN returns EINTR with the kick still pending (the thread's mask blocks it again
 * on return): dequeue it, or every later KVM_RUN would return EINTR at once. */
static void eat_kicks(void)
{
    sigset_t pending, only;
    struct timespec zero = { 0, 0 };

    sigemptyset(&only);
    sigaddset(&only, KVM_KICK_SIGNAL);
    while (sigpending(&pending) == 0 && sigismember(&pending, KVM_KICK_SIGNAL))
        if (sigtimedwait(&only, NULL, &zero) < 0)
            break;
}

static void kick_mask_leave(const sigset_t *saved)
{
    eat_kicks();
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

int kvm__run(struct cpu *cpu, struct cpu_stop *stop)
{
    sigset_t saved;
    int r;

    if (!cpu || !stop)
        return -EINVAL;
    memset(stop, 0, sizeof(*stop));
    if ((r = kick_mask_enter(cpu, &saved)) < 0)
        return r;
#if defined(__x86_64__)
    if (cpu->sync_regs)
        cpu->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
#endif
    kvm__set_running(cpu, 1);
    for (;;) {
        kvm__service(cpu);
        if (cpu->env->stop_requested && *cpu->env->stop_requested) {
            fill_stop(cpu, stop, CPU_STOP_REQUESTED, "stop requested");
            r = 0;
            break;
        }
        if (ioctl(cpu->vcpu_fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                eat_kicks();
                const char *why = NULL;
                if (halted_for_good(cpu, &why)) {
                    record_exit(cpu, EXIT_HLT, 0, 0, 0);
                    fill_stop(cpu, stop, CPU_STOP_HALTED, why);
                    r = 0;
                    break;
                }
                continue;
            }
            r = -errno;
            char detail[160];
            snprintf(detail, sizeof(detail), "kvm: KVM_RUN: %s", strerror(-r));
            fill_stop(cpu, stop, CPU_STOP_ERROR, detail);
            break;
        }
        r = handle_exit(cpu, stop);
        if (r <= 0)
            break;
        cpu->idle_checks = 0;       /* it ran up to an exit: not idle since the last kick */
    }
    kvm__set_running(cpu, 0);
    kick_mask_leave(&saved);
    return r < 0 ? r : 0;
}
#endif
