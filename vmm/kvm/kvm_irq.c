/* Device interrupt lines on KVM: one resampling irqfd per GSI (KVM_IRQFD with
 * KVM_IRQFD_FLAG_RESAMPLE), made on the GSI's first rise, or KVM_IRQ_LINE where KVM lacks
 * KVM_CAP_IRQFD / KVM_CAP_IRQFD_RESAMPLE, on kvm-pvm, or with VMLAB_KVM_IRQFD=0.
 *
 * What the kernel does with a resampling irqfd (virt/kvm/eventfd.c): a write to the irqfd
 * asserts the GSI from its own source (a kworker does it, shortly after the write); the
 * line then stays asserted until the guest EOIs the vector (irqfd_resampler_ack lowers it
 * and signals the resamplefd) or, since Linux 6.4, until the guest unmasks a level pin
 * whose IRR is set (the IOAPIC clears its IRR and signals the resamplefd instead of
 * delivering). Userspace cannot lower the line itself. So, to look like KVM_IRQ_LINE to
 * the guest (the pin's IOAPIC entry, from KVM_GET_IRQCHIP, decides):
 *  - a rise on a level pin writes the irqfd. An edge pin goes through KVM_IRQ_LINE, rise
 *    and fall: edges need no resampling, and a line the kernel holds until EOI would
 *    swallow a rise that comes before the EOI (Linux EOIs edge interrupts first).
 *  - a fall on a level pin needs nothing when the pin is unmasked: the interrupt is or
 *    will be delivered, and the EOI that ends it lowers the line, as KVM_IRQ_LINE's
 *    lowering followed by that EOI would. If the pin is masked the guest would see the
 *    stale assertion at unmask (kernels before 6.4), so the irqfd is deassigned (which
 *    lowers the line) and assigned again: slow, and only for a line lowered while masked.
 *  - at a resample the resample thread re-asserts if the device still holds the line and
 *    the pin is level-triggered: the IOAPIC delivers it again after the EOI.
 * arm64 works the same with the vGIC: GSI n is SPI n in KVM's default routing, the guest's
 * EOI of a level SPI signals the resamplefd, and the pin's "entry" is the SPI's trigger and
 * enable bits from the distributor (KVM_DEV_ARM_VGIC_GRP_DIST_REGS). The kernel reads those
 * only with every vCPU out of KVM_RUN (EBUSY otherwise: the resample thread then takes the
 * SPI as level and enabled, the FDT's setting, and re-asserts a line still held).
 */
#include "kvm_internal.h"
#include "kvm_irq.h"
#include "vmm/sandbox.h"

#if VMLAB_HAVE_KVM
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define RTE_REMOTE_IRR  (1ULL << 14)
#define RTE_LEVEL       (1ULL << 15)
#define RTE_MASKED      (1ULL << 16)

const char *kvm_irq_path(const struct cpu *cpu)
{
    return cpu && cpu->use_irqfd ? "irqfd" : "irq_line";
}

static void set_line(struct cpu *cpu, unsigned gsi, int level)
{
#if defined(__aarch64__)
    /* GSI n is the GIC's SPI n: INTID 32 + n (the FDT's interrupts = <0 n 4>). */
    uint32_t irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (32 + gsi);
#else
    uint32_t irq = gsi;
#endif
    struct kvm_irq_level l = { .irq = irq, .level = (uint32_t)level };
    /* Cannot fail for a pin below 24 on a VM with an irqchip; nothing useful to do if it
     * did, and device models have no error path for a line change. */
    (void)ioctl(cpu->vm_fd, KVM_IRQ_LINE, &l);
}

static void set_level_line(void *opaque, unsigned gsi, int level)
{
    struct cpu *cpu = opaque;
    if (gsi >= MEMMAP_IOAPIC_PINS)
        return;
    level = level ? 1 : 0;
    if (level && !cpu->irq_level[gsi] && cpu->env->stats)
        cpu->env->stats->exits[EXIT_IRQ]++;
    cpu->irq_level[gsi] = (uint8_t)level;
    set_line(cpu, gsi, level);
}

/* The pin's IOAPIC redirection entry; an unreadable one reads as unmasked and
 * level-triggered, as the DSDT declares the virtio lines. arm64: the same two bits for
 * the SPI from the vGIC's distributor (ICFGR, ISENABLER), the FDT's level-high default
 * when unreadable. */
static uint64_t redir_entry(struct cpu *cpu, unsigned gsi)
{
#if defined(__x86_64__)
    struct kvm_irqchip ic = { .chip_id = KVM_IRQCHIP_IOAPIC };
    if (ioctl(cpu->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
        return RTE_LEVEL;
    return ic.chip.ioapic.redirtbl[gsi].bits;
#else
    int level, enabled;
    if (kvm__arch_spi_state(cpu, gsi, &level, &enabled) < 0)
        return RTE_LEVEL;
    return (level ? RTE_LEVEL : 0) | (enabled ? 0 : RTE_MASKED);
#endif
}

#if defined(__aarch64__)
/* The vGIC's enables are not read: a held SPI counts even where the guest left it off. */
int kvm__irq_line_held(struct cpu *cpu)
{
    int held = 0;
    if (cpu->use_irqfd)
        pthread_mutex_lock(&cpu->irq_lock);
    for (unsigned gsi = 0; gsi < MEMMAP_IOAPIC_PINS && !held; gsi++)
        held = cpu->use_irqfd ? cpu->pins[gsi].level : cpu->irq_level[gsi];
    if (cpu->use_irqfd)
        pthread_mutex_unlock(&cpu->irq_lock);
    return held;
}
#else
int kvm__irq_line_held(struct cpu *cpu)
{
    struct kvm_irqchip ic = { .chip_id = KVM_IRQCHIP_IOAPIC };
    int held = 0;

    if (ioctl(cpu->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
        return 1;                       /* cannot tell: assume it may wake the vCPU */
    pthread_mutex_lock(&cpu->irq_lock);
    for (unsigned gsi = 0; gsi < MEMMAP_IOAPIC_PINS && !held; gsi++)
        held = (cpu->use_irqfd ? cpu->pins[gsi].level : cpu->irq_level[gsi]) &&
               !(ic.chip.ioapic.redirtbl[gsi].bits & RTE_MASKED);
    pthread_mutex_unlock(&cpu->irq_lock);
    return held;
}
#endif

static int irqfd_assign(struct cpu *cpu, unsigned gsi, int deassign)
{
    struct kvm_irqfd a = {
        .fd = (uint32_t)cpu->pins[gsi].irqfd,
        .gsi = gsi,
        .flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : KVM_IRQFD_FLAG_RESAMPLE,
        .resamplefd = deassign ? 0 : (uint32_t)cpu->pins[gsi].resamplefd,
    };
    return ioctl(cpu->vm_fd, KVM_IRQFD, &a) < 0 ? -errno : 0;
}

/* Under irq_lock: the GSI's eventfds, registered; the resample thread told to watch. */
static int pin_open(struct cpu *cpu, unsigned gsi)
{
    struct kvm_irq_pin *p = &cpu->pins[gsi];
    int r;

    p->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->resamplefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->irqfd < 0 || p->resamplefd < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = irqfd_assign(cpu, gsi, 0)) < 0)
        goto fail;
    uint64_t one = 1;
    (void)!write(cpu->irq_wake_fd, &one, sizeof(one));
    return 0;
fail:
    if (p->irqfd >= 0)
        close(p->irqfd);
    if (p->resamplefd >= 0)
        close(p->resamplefd);
    p->irqfd = p->resamplefd = -1;
    return r;
}

/* Under irq_lock. */
static void pin_assert(struct kvm_irq_pin *p)
{
    uint64_t one = 1;
    /* An eventfd write fails only when the counter would overflow: never at 1 a time. */
    (void)!write(p->irqfd, &one, sizeof(one));
    p->asserted = 1;
}

/* Under irq_lock: lower the kernel's line now. Deassigning the GSI's only resampling irqfd
 * lowers it (irqfd_resampler_shutdown, after the pending inject has run); then the irqfd
 * goes back with a drained counter, so nothing is injected on re-assignment. */
static void pin_retract(struct cpu *cpu, unsigned gsi)
{
    struct kvm_irq_pin *p = &cpu->pins[gsi];
    uint64_t n;

    (void)irqfd_assign(cpu, gsi, 1);
    while (read(p->irqfd, &n, sizeof(n)) == sizeof(n))
        ;
    if (irqfd_assign(cpu, gsi, 0) < 0) {
        /* Cannot happen with the same fds a moment ago; if it does, this GSI goes on with
         * KVM_IRQ_LINE (the irqfd's line is down now). */
        p->use_line = 1;
    }
    p->asserted = 0;
}

static void set_level_irqfd(void *opaque, unsigned gsi, int level)
{
    struct cpu *cpu = opaque;
    if (gsi >= MEMMAP_IOAPIC_PINS)
        return;
    level = level ? 1 : 0;
    pthread_mutex_lock(&cpu->irq_lock);
    struct kvm_irq_pin *p = &cpu->pins[gsi];
    if (level == p->level) {
        pthread_mutex_unlock(&cpu->irq_lock);
        return;
    }
    p->level = (uint8_t)level;
    if (level && cpu->env->stats)
        cpu->env->stats->exits[EXIT_IRQ]++;
    if (level) {
        /* An edge pin has nothing to resample and must see every rise as an edge, which
         * a line the kernel holds until EOI would swallow: KVM_IRQ_LINE for it. */
        if (!p->use_line && !(redir_entry(cpu, gsi) & RTE_LEVEL)) {
            p->line_up = 1;
            set_line(cpu, gsi, 1);
        } else if (!p->use_line && (p->irqfd >= 0 || pin_open(cpu, gsi) == 0)) {
            pin_assert(p);
        } else {
            p->use_line = 1;
            set_line(cpu, gsi, 1);
        }
    } else {
        if (p->line_up || p->use_line) {
            p->line_up = 0;
            set_line(cpu, gsi, 0);
        }
        if (p->asserted && (redir_entry(cpu, gsi) & RTE_MASKED))
            pin_retract(cpu, gsi);
    }
    pthread_mutex_unlock(&cpu->irq_lock);
}

/* On the resample thread: the kernel lowered the GSI (EOI, or unmask with IRR set). */
static void on_resample(struct cpu *cpu, unsigned gsi)
{
    struct kvm_irq_pin *p = &cpu->pins[gsi];
    uint64_t n;

    pthread_mutex_lock(&cpu->irq_lock);
    if (p->resamplefd >= 0 && read(p->resamplefd, &n, sizeof(n)) == sizeof(n)) {
        p->asserted = 0;
        if (p->level && !p->line_up && (redir_entry(cpu, gsi) & RTE_LEVEL))
            pin_assert(p);
    }
    pthread_mutex_unlock(&cpu->irq_lock);
}

/* Watches the resamplefds of the GSIs opened so far; irq_wake_fd says the set grew or it
 * is time to quit. Writing an irqfd is thread-safe, so it re-asserts directly: no kick. */
static void *resample_main(void *arg)
{
    struct cpu *cpu = arg;
    struct pollfd pf[1 + MEMMAP_IOAPIC_PINS];
    unsigned gsi_of[1 + MEMMAP_IOAPIC_PINS];

    sandbox_enter_helper();
    for (;;) {
        nfds_t n = 1;
        pthread_mutex_lock(&cpu->irq_lock);
        if (cpu->irq_quit) {
            pthread_mutex_unlock(&cpu->irq_lock);
            break;
        }
        pf[0] = (struct pollfd){ .fd = cpu->irq_wake_fd, .events = POLLIN };
        for (unsigned g = 0; g < MEMMAP_IOAPIC_PINS; g++) {
            if (cpu->pins[g].resamplefd < 0)
                continue;
            pf[n] = (struct pollfd){ .fd = cpu->pins[g].resamplefd, .events = POLLIN };
            gsi_of[n++] = g;
        }
        pthread_mutex_unlock(&cpu->irq_lock);
        if (poll(pf, n, -1) < 0)
            continue;           /* EINTR */
        if (pf[0].revents & POLLIN) {
            uint64_t v;
            (void)!read(cpu->irq_wake_fd, &v, sizeof(v));
        }
        for (nfds_t i = 1; i < n; i++)
            if (pf[i].revents & POLLIN)
                on_resample(cpu, gsi_of[i]);
    }
    return NULL;
}

/* kvm-pvm (a PVM host's /dev/kvm) runs non-PVM guests in its instruction emulator and
 * mishandles level interrupts the irqfd kworker injects while the vCPU runs (runs of
 * the handler with nothing in service, now and then a storm of them); KVM_IRQ_LINE,
 * injected while the vCPU is out of KVM_RUN, gives one such extra run, always. */
static int on_kvm_pvm(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0;
}

/* VMLAB_KVM_IRQFD=0 or 1 overrides the default: irqfd where KVM has it, except kvm-pvm. */
static int want_irqfd(struct cpu *cpu)
{
    const char *e = getenv("VMLAB_KVM_IRQFD");
    if (e && strcmp(e, "0") == 0)
        return 0;
    if (!(e && strcmp(e, "1") == 0) && on_kvm_pvm())
        return 0;
    return ioctl(cpu->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0 &&
           ioctl(cpu->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE) > 0;
}

int kvm__irq_init(struct cpu *cpu)
{
    int r;

    cpu->irq_wake_fd = -1;
    for (unsigned g = 0; g < MEMMAP_IOAPIC_PINS; g++)
        cpu->pins[g].irqfd = cpu->pins[g].resamplefd = -1;
    cpu->sink = (struct irq_sink){ set_level_line, cpu };
    if (!want_irqfd(cpu))
        return 0;
    if ((r = pthread_mutex_init(&cpu->irq_lock, NULL)) != 0)
        return -r;
    cpu->irq_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cpu->irq_wake_fd < 0) {
        r = -errno;
        pthread_mutex_destroy(&cpu->irq_lock);
        return r;
    }
    if ((r = pthread_create(&cpu->irq_thread, NULL, resample_main, cpu)) != 0) {
        close(cpu->irq_wake_fd);
        cpu->irq_wake_fd = -1;
        pthread_mutex_destroy(&cpu->irq_lock);
        return -r;
    }
    cpu->irq_thread_started = 1;
    cpu->use_irqfd = 1;
    cpu->sink = (struct irq_sink){ set_level_irqfd, cpu };
    return 0;
}

/* Before the VM fd closes. Closing an irqfd's eventfd detaches it from the VM. */
void kvm__irq_destroy(struct cpu *cpu)
{
    if (!cpu->irq_thread_started)
        return;
    pthread_mutex_lock(&cpu->irq_lock);
    cpu->irq_quit = 1;
    pthread_mutex_unlock(&cpu->irq_lock);
    uint64_t one = 1;
    (void)!write(cpu->irq_wake_fd, &one, sizeof(one));
    pthread_join(cpu->irq_thread, NULL);
    cpu->irq_thread_started = 0;
    for (unsigned g = 0; g < MEMMAP_IOAPIC_PINS; g++) {
        if (cpu->pins[g].irqfd >= 0)
            close(cpu->pins[g].irqfd);
        if (cpu->pins[g].resamplefd >= 0)
            close(cpu->pins[g].resamplefd);
        cpu->pins[g].irqfd = cpu->pins[g].resamplefd = -1;
    }
    close(cpu->irq_wake_fd);
    cpu->irq_wake_fd = -1;
    pthread_mutex_destroy(&cpu->irq_lock);
    cpu->use_irqfd = 0;
}

#else

const char *kvm_irq_path(const struct cpu *cpu)
{
    (void)cpu;
    return "";
}
#endif
