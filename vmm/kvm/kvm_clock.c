/* The KVM backend's clock: host CLOCK_MONOTONIC since the VM was created. Timers fire on
 * the vCPU thread: a kick thread sleeps until the next timer (or the next poll of
 * env->poll / stop_requested) and sends KVM_KICK_SIGNAL to the vCPU thread, which leaves
 * KVM_RUN with EINTR and runs what is due (kvm__service). A wake watcher thread polls
 * env->wake_fd (the devices' host sockets): when it turns readable, the poll is due at once,
 * so host I/O is served when it arrives, not at the next KVM_POLL_NS tick. */
#include "kvm_internal.h"
#include "vmm/sandbox.h"

#if VMLAB_HAVE_KVM
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t kvm__now_ns(void *opaque)
{
    struct cpu *cpu = opaque;
    return mono_ns() - cpu->t0_ns;
}

/* Under lock: the next moment the vCPU thread must come out and look around. */
static void recompute_locked(struct cpu *cpu)
{
    uint64_t next = cpu->io_ready ? 0 : cpu->last_poll_ns + KVM_POLL_NS;
    if (cpu->timers && cpu->timers->at_ns < next)
        next = cpu->timers->at_ns;
    atomic_store(&cpu->next_service_ns, next);
}

static int64_t kvm_schedule(void *opaque, uint64_t at_ns, clock_timer_fn fn, void *arg)
{
    struct cpu *cpu = opaque;
    if (!fn)
        return -EINVAL;
    struct kvm_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->at_ns = at_ns;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&cpu->lock);
    t->id = ++cpu->next_timer_id;
    struct kvm_timer **pp = &cpu->timers;
    /* Equal deadlines keep scheduling order: insert after every timer due at or before. */
    while (*pp && (*pp)->at_ns <= at_ns)
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
    recompute_locked(cpu);
    pthread_cond_signal(&cpu->cond);
    int64_t id = t->id;
    pthread_mutex_unlock(&cpu->lock);
    return id;
}

static int kvm_cancel(void *opaque, int64_t id)
{
    struct cpu *cpu = opaque;
    int r = -ENOENT;
    pthread_mutex_lock(&cpu->lock);
    for (struct kvm_timer **pp = &cpu->timers; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct kvm_timer *t = *pp;
            *pp = t->next;
            free(t);
            r = 0;
            break;
        }
    }
    recompute_locked(cpu);
    pthread_mutex_unlock(&cpu->lock);
    return r;
}

static void kick_handler(int sig)
{
    (void)sig;      /* only there so the signal interrupts KVM_RUN instead of killing us */
}

/* Interrupts KVM_RUN once (cpu->lock held); kvm__service and kvm__set_running clear `kicked`. */
static void kick_locked(struct cpu *cpu)
{
    if (cpu->running && !cpu->kicked) {
        cpu->kicked = 1;
        pthread_kill(cpu->vcpu_thread, KVM_KICK_SIGNAL);
    }
}

static void *kick_main(void *arg)
{
    struct cpu *cpu = arg;
    sandbox_enter_helper();
    pthread_mutex_lock(&cpu->lock);
    while (!cpu->quit) {
        uint64_t now = kvm__now_ns(cpu);
        uint64_t due = atomic_load(&cpu->next_service_ns);
        if (now >= due)
            kick_locked(cpu);
        if (!cpu->running || cpu->kicked) {
            pthread_cond_wait(&cpu->cond, &cpu->lock);
            continue;
        }
        uint64_t abs = cpu->t0_ns + due;
        struct timespec ts = { (time_t)(abs / 1000000000ULL), (long)(abs % 1000000000ULL) };
        pthread_cond_timedwait(&cpu->cond, &cpu->lock, &ts);
    }
    pthread_mutex_unlock(&cpu->lock);
    return NULL;
}

/* Host I/O is ready: the poll is due now. One round at a time: the watcher waits until
 * kvm__service has polled, so a socket that stays readable cannot spin it. */
static void *wake_main(void *arg)
{
    struct cpu *cpu = arg;
    int fd = cpu->env->wake_fd(cpu->env->poll_opaque);

    sandbox_enter_helper();
    for (;;) {
        struct pollfd p[2] = { { fd, POLLIN, 0 }, { cpu->wake_quit_fd, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        pthread_mutex_lock(&cpu->lock);
        if (cpu->quit || p[1].revents) {
            pthread_mutex_unlock(&cpu->lock);
            break;
        }
        if (p[0].revents) {
            cpu->io_ready = 1;
            recompute_locked(cpu);
            /* The kick from here: waking the kick thread first cost another cross-thread
             * wakeup on every host reply. */
            kick_locked(cpu);
            pthread_cond_signal(&cpu->cond);
            while (cpu->io_ready && !cpu->quit)
                pthread_cond_wait(&cpu->io_cond, &cpu->lock);
        }
        pthread_mutex_unlock(&cpu->lock);
    }
    return NULL;
}

/* On the first run: the VMM sets env->wake_fd after the devices exist, after create. */
static void wake_start(struct cpu *cpu)
{
    if (cpu->wake_thread_started || !cpu->env->wake_fd || cpu->wake_quit_fd < 0 ||
        cpu->env->wake_fd(cpu->env->poll_opaque) < 0)
        return;
    cpu->wake_thread_started = !pthread_create(&cpu->wake_thread, NULL, wake_main, cpu);
}

int kvm__clock_init(struct cpu *cpu)
{
    pthread_condattr_t ca;
    struct sigaction sa = { .sa_handler = kick_handler };

    cpu->t0_ns = mono_ns();
    cpu->clock = (struct clock){ kvm__now_ns, kvm_schedule, kvm_cancel, cpu };
    cpu->wake_quit_fd = -1;
    sigemptyset(&sa.sa_mask);
    if (sigaction(KVM_KICK_SIGNAL, &sa, NULL) < 0)
        return -errno;
    if (pthread_mutex_init(&cpu->lock, NULL))
        return -ENOMEM;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&cpu->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!r && (r = pthread_cond_init(&cpu->io_cond, NULL)))
        pthread_cond_destroy(&cpu->cond);
    if (r) {
        pthread_mutex_destroy(&cpu->lock);
        return -r;
    }
    recompute_locked(cpu);
    r = pthread_create(&cpu->kick_thread, NULL, kick_main, cpu);
    if (r) {
        pthread_cond_destroy(&cpu->io_cond);
        pthread_cond_destroy(&cpu->cond);
        pthread_mutex_destroy(&cpu->lock);
        return -r;
    }
    cpu->kick_thread_started = 1;
    cpu->wake_quit_fd = eventfd(0, EFD_CLOEXEC);      /* -1: no watcher, the timer polls */
    return 0;
}

void kvm__clock_destroy(struct cpu *cpu)
{
    if (!cpu->kick_thread_started)
        return;
    pthread_mutex_lock(&cpu->lock);
    cpu->quit = 1;
    pthread_cond_signal(&cpu->cond);
    pthread_cond_broadcast(&cpu->io_cond);
    pthread_mutex_unlock(&cpu->lock);
    pthread_join(cpu->kick_thread, NULL);
    if (cpu->wake_thread_started) {
        uint64_t one = 1;
        if (write(cpu->wake_quit_fd, &one, sizeof(one)) == sizeof(one))
            pthread_join(cpu->wake_thread, NULL);
        cpu->wake_thread_started = 0;
    }
    if (cpu->wake_quit_fd >= 0)
        close(cpu->wake_quit_fd);
    cpu->wake_quit_fd = -1;
    while (cpu->timers) {
        struct kvm_timer *t = cpu->timers;
        cpu->timers = t->next;
        free(t);
    }
    pthread_cond_destroy(&cpu->io_cond);
    pthread_cond_destroy(&cpu->cond);
    pthread_mutex_destroy(&cpu->lock);
    cpu->kick_thread_started = 0;
}

void kvm__set_running(struct cpu *cpu, int running)
{
    pthread_mutex_lock(&cpu->lock);
    cpu->running = running;
    cpu->kicked = 0;
    if (running) {
        cpu->vcpu_thread = pthread_self();
        recompute_locked(cpu);
    }
    pthread_cond_signal(&cpu->cond);
    pthread_mutex_unlock(&cpu->lock);
    if (running)
        wake_start(cpu);
}

void kvm__service(struct cpu *cpu)
{
    uint64_t now = kvm__now_ns(cpu);
    if (now < atomic_load(&cpu->next_service_ns)) {
        /* A kick for a timer cancelled since: re-arm the kick thread. */
        if (atomic_load(&cpu->kicked)) {
            pthread_mutex_lock(&cpu->lock);
            cpu->kicked = 0;
            pthread_cond_signal(&cpu->cond);
            pthread_mutex_unlock(&cpu->lock);
        }
        return;
    }
    /* Timers one at a time, without the lock, so a callback may schedule or cancel. A
     * timer a callback schedules for "now" runs in this same pass, after the others. */
    for (;;) {
        pthread_mutex_lock(&cpu->lock);
        struct kvm_timer *t = cpu->timers;
        if (!t || t->at_ns > now) {
            pthread_mutex_unlock(&cpu->lock);
            break;
        }
        cpu->timers = t->next;
        pthread_mutex_unlock(&cpu->lock);
        t->fn(t->arg);
        free(t);
    }
    int io = atomic_load(&cpu->io_ready);
    int do_poll = io || now >= cpu->last_poll_ns + KVM_POLL_NS;
    /* What a control-socket `stats` served by this poll reports as the VM's time (the
     * software CPU syncs its clock to the stats at its polls too). */
    if (do_poll && cpu->env->stats)
        cpu->env->stats->virtual_ns = now;
    if (do_poll && cpu->env->poll)
        cpu->env->poll(cpu->env->poll_opaque);
    pthread_mutex_lock(&cpu->lock);
    if (do_poll)
        cpu->last_poll_ns = now;
    if (io) {                   /* the watcher may look again */
        cpu->io_ready = 0;
        pthread_cond_signal(&cpu->io_cond);
    }
    cpu->kicked = 0;
    recompute_locked(cpu);
    pthread_cond_signal(&cpu->cond);
    pthread_mutex_unlock(&cpu->lock);
}
#endif
