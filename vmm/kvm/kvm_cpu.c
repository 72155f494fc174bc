/* The KVM CPU backend: a VM with the in-kernel interrupt controller (x86: PIC + IOAPIC +
 * LAPIC, kvm_x86.c; arm64: vGIC, kvm_arm64.c), one vCPU, memory slots from the guest_mem
 * ranges. Exits go to the same buses as on the software CPU (kvm_run.c); timers and the
 * kick thread are in kvm_clock.c, device interrupt lines in kvm_irq.c, entry state in
 * kvm_boot.c (x86) and kvm_arm64.c. */
#include "kvm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#if VMLAB_HAVE_KVM
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Opens /dev/kvm and checks the API version and capabilities; the fd or -errno. */
static int kvm_open_checked(char *why, size_t whylen)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(why, whylen, "/dev/kvm: %s", strerror(e));
        return -e;
    }
    int v = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (v != KVM_API_VERSION) {
        snprintf(why, whylen, "/dev/kvm: KVM_GET_API_VERSION is %d, need %d", v,
                 KVM_API_VERSION);
        close(fd);
        return -ENOTSUP;
    }
    for (const struct kvm_required_cap *c = kvm__arch_required_caps; c->name; c++) {
        if (ioctl(fd, KVM_CHECK_EXTENSION, c->cap) <= 0) {
            snprintf(why, whylen, "/dev/kvm: missing capability %s", c->name);
            close(fd);
            return -ENOTSUP;
        }
    }
    return fd;
}

static int kvm_probe(char *why, unsigned whylen)
{
    char buf[160];
    int fd = kvm_open_checked(buf, sizeof(buf));
    if (fd < 0) {
        if (why && whylen)
            snprintf(why, whylen, "%s", buf);
        return fd;
    }
    close(fd);
    if (why && whylen)
        snprintf(why, whylen, "/dev/kvm: API version %d", KVM_API_VERSION);
    return 0;
}

static void kvm_destroy(struct cpu *cpu)
{
    if (!cpu)
        return;
    kvm__clock_destroy(cpu);
    kvm__irq_destroy(cpu);
    if (cpu->gic_fd >= 0)
        close(cpu->gic_fd);
    if (cpu->run)
        munmap(cpu->run, cpu->run_size);
    if (cpu->vcpu_fd >= 0)
        close(cpu->vcpu_fd);
    if (cpu->vm_fd >= 0)
        close(cpu->vm_fd);
    if (cpu->kvm_fd >= 0)
        close(cpu->kvm_fd);
    free(cpu);
}

static int kvm_create(const struct cpu_env *env, struct cpu **out)
{
    char why[160];
    int r;

    *out = NULL;
    if (!env || !env->mem || !env->mmio || !env->pio)
        return -EINVAL;
    struct cpu *cpu = calloc(1, sizeof(*cpu));
    if (!cpu)
        return -ENOMEM;
    cpu->env = env;
    cpu->kvm_fd = cpu->vm_fd = cpu->vcpu_fd = cpu->gic_fd = -1;

    r = kvm_open_checked(why, sizeof(why));
    if (r < 0)
        goto fail;
    cpu->kvm_fd = r;
    cpu->vm_fd = ioctl(cpu->kvm_fd, KVM_CREATE_VM, 0);
    if (cpu->vm_fd < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = kvm__arch_vm_init(cpu)) < 0)
        goto fail;
    for (unsigned i = 0; i < env->mem->nranges; i++) {
        const struct guest_mem_range *g = &env->mem->ranges[i];
        if (!g->host || g->size == 0 || (g->gpa | g->size) & 0xfff) {
            r = -EINVAL;
            goto fail;
        }
        struct kvm_userspace_memory_region m = {
            .slot = i,
            .guest_phys_addr = g->gpa,
            .memory_size = g->size,
            .userspace_addr = (uint64_t)(uintptr_t)g->host,
        };
        if (ioctl(cpu->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0) {
            r = -errno;
            goto fail;
        }
    }
    if ((r = kvm__irq_init(cpu)) < 0)
        goto fail;
    cpu->vcpu_fd = ioctl(cpu->vm_fd, KVM_CREATE_VCPU, 0);
    if (cpu->vcpu_fd < 0) {
        r = -errno;
        goto fail;
    }
    int sz = ioctl(cpu->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz < (int)sizeof(struct kvm_run)) {
        r = sz < 0 ? -errno : -EINVAL;
        goto fail;
    }
    cpu->run_size = (size_t)sz;
    cpu->run = mmap(NULL, cpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->vcpu_fd, 0);
    if (cpu->run == MAP_FAILED) {
        cpu->run = NULL;
        r = -errno;
        goto fail;
    }
    if ((r = kvm__arch_vcpu_init(cpu)) < 0)
        goto fail;
    if ((r = kvm__clock_init(cpu)) < 0)
        goto fail;
    *out = cpu;
    return 0;
fail:
    kvm_destroy(cpu);
    return r;
}

static const struct irq_sink *kvm_irq_sink(struct cpu *cpu)
{
    return &cpu->sink;
}

static const struct clock *kvm_clock(struct cpu *cpu)
{
    return &cpu->clock;
}

#if defined(__aarch64__)
static int kvm_gic_version(struct cpu *cpu)
{
    return cpu->gic_version;
}
#endif

const struct cpu_backend_ops kvm_cpu_backend = {
    .name = "kvm",
    .probe = kvm_probe,
    .create = kvm_create,
#if defined(__aarch64__)
    .gic_version = kvm_gic_version,
#endif
    .tsc_khz = kvm__arch_tsc_khz,
    .boot = kvm__boot,
    .run = kvm__run,
    .irq_sink = kvm_irq_sink,
    .clock = kvm_clock,
    .destroy = kvm_destroy,
};

#else /* !VMLAB_HAVE_KVM: the build still links; probe says why KVM is not there. */

#include "vmm/cpu_backend.h"

static int kvm_probe(char *why, unsigned whylen)
{
    if (why && whylen)
        snprintf(why, whylen, "kvm: this vmlab was built without <linux/kvm.h>");
    return -ENOSYS;
}

static int kvm_create(const struct cpu_env *env, struct cpu **out)
{
    (void)env;
    *out = NULL;
    return -ENOSYS;
}

const struct cpu_backend_ops kvm_cpu_backend = {
    .name = "kvm",
    .probe = kvm_probe,
    .create = kvm_create,
};
#endif
