#include "vm.h"
#include "acpi_build.h"
#include "fdt_build.h"
#include "loader_arm64.h"
#include "loader_linux.h"
#include "loader_pvh.h"
#include "memmap.h"
#include "control.h"
#include "control_proto.h"
#include "traces/record.h"
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MIN_MEM (2ULL << 20)

/* The machine follows the host: an arm64 vmlab builds the arm64 machine (memmap.h, GIC,
 * no ports, FDT in X0) for KVM, its only CPU backend. */
#if defined(__aarch64__)
#define VM_ARM64 1
#else
#define VM_ARM64 0
#endif

void vm_request_exit(void *opaque, int status)
{
    struct vm *vm = opaque;

    if (!vm->exit_status_set) {
        vm->exit_status = status;
        vm->exit_status_set = 1;
    }
    vm->stop_requested = 1;
}

static int pick_backend(struct vm *vm, const char *cpu, int quiet, char *err, size_t errlen)
{
    char why[160] = "";

    if (!strcmp(cpu, "sim")) {
        /* An arm64 build has no software CPU: its probe says so. */
        int src = sim_cpu_backend.probe(why, sizeof(why));
        if (src) {
            snprintf(err, errlen, "--cpu sim: %s", why);
            return src;
        }
        vm->cpu_ops = &sim_cpu_backend;
        return 0;
    }
    if (strcmp(cpu, "kvm") && strcmp(cpu, "auto")) {
        snprintf(err, errlen, "--cpu '%s' is not one of sim, kvm, auto", cpu);
        return -EINVAL;
    }
    int rc = kvm_cpu_backend.probe ? kvm_cpu_backend.probe(why, sizeof(why)) : -ENOSYS;
    if (rc == 0) {
        vm->cpu_ops = &kvm_cpu_backend;
        if (!strcmp(cpu, "auto") && !quiet)
            fprintf(stderr, "vmlab: --cpu auto: using kvm\n");
        return 0;
    }
    if (!strcmp(cpu, "kvm")) {
        snprintf(err, errlen, "--cpu kvm: KVM is not available here: %s", why);
        return rc;
    }
    char simwhy[160];
    if (sim_cpu_backend.probe(simwhy, sizeof(simwhy))) {
        snprintf(err, errlen, "--cpu auto: KVM is not available here (%s) and %s", why, simwhy);
        return rc;
    }
    vm->cpu_ops = &sim_cpu_backend;
    if (!quiet)
        fprintf(stderr, "vmlab: --cpu auto: using sim (KVM unavailable: %s)\n", why);
    return 0;
}

static int add_device(struct vm *vm, const char *kind, const char *args, enum bus_space space,
                      uint64_t base, int irq, char *err, size_t errlen)
{
    struct machine_config *mc = &vm->mc;

    if (mc->ndevices == MACHINE_MAX_DEVICES) {
        snprintf(err, errlen, "too many devices (the limit is %d)", MACHINE_MAX_DEVICES);
        return -ENOSPC;
    }
    struct machine_device *d = &mc->devices[mc->ndevices++];
    if (snprintf(d->kind, sizeof(d->kind), "%s", kind) >= (int)sizeof(d->kind) ||
        snprintf(d->args, sizeof(d->args), "%s", args) >= (int)sizeof(d->args)) {
        snprintf(err, errlen, "%s: device arguments longer than %zu bytes", kind,
                 sizeof(d->args) - 1);
        return -EINVAL;
    }
    d->base = base;
    d->irq = irq;
    d->space = space;
    d->nwindows = machine_device_windows(d, d->windows);     /* the type's layout */
    return 0;
}

static int is_virtio(const struct machine_device *d)
{
    return strncmp(d->kind, "virtio-", 7) == 0;
}

static unsigned virtio_slots_used(const struct machine_config *mc)
{
    unsigned n = 0;
    for (unsigned i = 0; i < mc->ndevices; i++)
        n += is_virtio(&mc->devices[i]);
    return n;
}

static int add_virtio(struct vm *vm, const char *kind, const char *args, char *err,
                      size_t errlen)
{
    uint64_t base;
    int irq;

    if (memmap_virtio_slot(virtio_slots_used(&vm->mc), &base, &irq)) {
        snprintf(err, errlen, "too many virtio devices (the limit is %d)",
                 MEMMAP_VIRTIO_MMIO_SLOTS);
        return -ENOSPC;
    }
    return add_device(vm, kind, args, BUS_MMIO, base, irq, err, errlen);
}

/* A device spec whose first item is a bare word names that word's key: --block PATH[,ro]
 * → "path=PATH,ro", --net user[,hostfwd=...] → "net=user,..."; a spec starting with a key
 * (mem=, path=, tap=, tapfd=) is passed through. */
static int keyed_args(const char *spec, const char *key, char *out, size_t outlen)
{
    const char *comma = strchr(spec, ',');
    size_t first = comma ? (size_t)(comma - spec) : strlen(spec);
    int n;

    if (memchr(spec, '=', first))
        n = snprintf(out, outlen, "%s", spec);
    else
        n = snprintf(out, outlen, "%s=%s", key, spec);
    return n < 0 || (size_t)n >= outlen ? -EINVAL : 0;
}

/* The uart's arguments for --serial PATH and --serial-in TEXT. TEXT is what the guest reads,
 * commas included: each becomes \x2c (which the uart unescapes), not a next argument. */
static int serial_args(const struct vm_options *opt, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    const char *path = opt->serial ? opt->serial : "stdio";
    int n = snprintf(out, outlen, "out=%s%s", path, opt->serial_in ? ",in=" : "");
    size_t len = n < 0 ? outlen : (size_t)n;

    if (strchr(path, ',')) {
        snprintf(err, errlen, "--serial: '%s' has a comma, which a path here cannot have", path);
        return -EINVAL;
    }
    for (const char *p = opt->serial_in; p && *p && len < outlen; p++)
        len += (size_t)snprintf(out + len, outlen - len, *p == ',' ? "\\x2c" : "%c", *p);
    if (len >= outlen) {
        snprintf(err, errlen, "--serial/--serial-in: longer than %zu bytes", outlen - 1);
        return -EINVAL;
    }
    return 0;
}

static int describe_machine(struct vm *vm, const struct vm_options *opt, char *err,
                            size_t errlen)
{
    char args[DEVICE_ARGS_MAX];
    int rc;

    vm->mc.ram_size = opt->mem;
    vm->mc.seed = opt->seed;
    snprintf(vm->mc.backend, sizeof(vm->mc.backend), "%s", vm->cpu_ops->name);

    /* Legacy devices first, then virtio in command-line order: slot order is stable. */
    if ((rc = serial_args(opt, args, sizeof(args), err, errlen)))
        return rc;
    if (VM_ARM64) {
        /* No ports on arm64: both sit in the MMIO hole; Linux powers off through PSCI. */
        rc = add_device(vm, "uart8250", args, BUS_MMIO, MEMMAP_ARM64_SERIAL_BASE,
                        MEMMAP_SERIAL_IRQ, err, errlen);
        if (!rc)
            rc = add_device(vm, "debug-exit", "", BUS_MMIO, MEMMAP_ARM64_DEBUG_EXIT_BASE, -1,
                            err, errlen);
        goto virtio;
    }
    rc = add_device(vm, "uart8250", args, BUS_PIO, MEMMAP_SERIAL_PORT, MEMMAP_SERIAL_IRQ,
                    err, errlen);
    if (!rc)
        rc = add_device(vm, "debug-exit", "", BUS_PIO, MEMMAP_DEBUG_EXIT_PORT, -1, err, errlen);
    /* Linux resets through the i8042; PVH test programs exit through debug-exit, and keep
     * the machine they always had (so their traces stay as recorded). */
    if (!rc && opt->kernel)
        rc = add_device(vm, "i8042", "", BUS_PIO, MEMMAP_I8042_PORT, -1, err, errlen);
    /* Linux reads the PIT before it has any other timer (KASLR seed, TSC calibration). No
     * interrupt line: the ACPI machine is hardware-reduced, Linux takes no IRQ 0. The
     * software CPU only: on KVM the kernel booted without it before, and every PIT read is
     * an exit to this process (a nested-KVM Linux boot with the PIT hung in one of five
     * CI-shaped runs, the first such hang; the KVM machine is kept as it was). */
    if (!rc && opt->kernel && !strcmp(vm->cpu_ops->name, "sim"))
        rc = add_device(vm, "i8254", "", BUS_PIO, MEMMAP_PIT_PORT, -1, err, errlen);
    /* The CMOS clock Linux takes the date from at boot and rtc_cmos serves as /dev/rtc0 (the
     * FADT and DSDT declare it). On the software CPU from a fixed base: deterministic. On KVM
     * (not deterministic anyway, its clock is the host's) from the host's time of day when the
     * VM is made, as crosvm's CMOS starts, unless --rtc-base sets it. */
    if (!rc && opt->kernel) {
        int sim = !strcmp(vm->cpu_ops->name, "sim");
        int n = opt->rtc_base ? snprintf(args, sizeof(args), "base=%s", opt->rtc_base)
                : sim ? snprintf(args, sizeof(args), "%s", "")
                : snprintf(args, sizeof(args), "base=%lld", (long long)time(NULL));
        if (n < 0 || n >= (int)sizeof(args)) {
            snprintf(err, errlen, "--rtc-base: longer than %zu bytes", sizeof(args) - 6);
            return -EINVAL;
        }
        rc = add_device(vm, "cmos-rtc", args, BUS_PIO, MEMMAP_RTC_PORT, -1, err, errlen);
    } else if (!rc && opt->rtc_base) {
        snprintf(err, errlen, "--rtc-base sets the CMOS clock of a Linux machine (--kernel); "
                 "this machine has none");
        return -EINVAL;
    }
virtio:
    for (unsigned i = 0; !rc && i < opt->nblocks; i++) {
        if (keyed_args(opt->blocks[i], "path", args, sizeof(args))) {
            snprintf(err, errlen, "--block '%.60s': too long", opt->blocks[i]);
            return -EINVAL;
        }
        rc = add_virtio(vm, "virtio-blk", args, err, errlen);
    }
    if (!rc && opt->console)
        rc = add_virtio(vm, "virtio-console", opt->console, err, errlen);
    if (!rc && opt->rng)
        rc = add_virtio(vm, "virtio-rng", "", err, errlen);
    if (!rc && opt->net) {
        if (keyed_args(opt->net, "net", args, sizeof(args))) {
            snprintf(err, errlen, "--net '%.60s': too long", opt->net);
            return -EINVAL;
        }
        rc = add_virtio(vm, "virtio-net", args, err, errlen);
    }
    if (!rc && opt->vsock)
        rc = add_virtio(vm, "virtio-vsock", opt->vsock, err, errlen);
    for (unsigned i = 0; !rc && i < opt->ninputs; i++) {
        char path[sizeof(vm->input_path[0])];
        /* path= is the VMM's (a socket it reads), not the device's: the trace header, and
         * so replay, sees the device without it. */
        if (input_source_split_args(opt->inputs[i], args, sizeof(args), path, sizeof(path))) {
            snprintf(err, errlen, "--input '%.60s': too long", opt->inputs[i]);
            return -EINVAL;
        }
        rc = add_virtio(vm, "virtio-input", args, err, errlen);
        if (!rc && path[0]) {
            memcpy(vm->input_path[vm->ninput_src], path, sizeof(path));
            vm->input_dev[vm->ninput_src++] = vm->mc.ndevices - 1;
        }
    }
    if (!rc && opt->balloon)
        rc = add_virtio(vm, "virtio-balloon", opt->balloon, err, errlen);
    return rc;
}

static void vm_irq_set_level(void *opaque, unsigned gsi, int level)
{
    struct vm *vm = opaque;
    vm->irq_target->set_level(vm->irq_target->opaque, gsi, level);
}

int vm_trace_start(struct vm *vm, const char *path, int mid_run, char *err, size_t errlen)
{
    int rc;
    /* A trace begun on a running VM cannot be replayed from device reset: its header says
     * so, and replay refuses it with a clear message instead of a false divergence. */
    int (*open)(struct trace_recorder **, const char *, const struct machine_config *,
                const struct clock *, char *, size_t) =
        mid_run ? trace_recorder_open_running : trace_recorder_open;

    if (vm->trace) {
        snprintf(err, errlen, "a trace is already being recorded");
        return -EBUSY;
    }
    rc = open(&vm->trace, path, &vm->mc, vm->cpu_ops->clock(vm->cpu), err, errlen);
    if (rc)
        return rc;
    vm->irq_target = trace_recorder_wrap_irq(vm->trace, vm->backend_sink);
    trace_recorder_attach_mem(vm->trace, &vm->mem);
    trace_recorder_attach_bus(vm->trace, &vm->mmio);
    trace_recorder_attach_bus(vm->trace, &vm->pio);
    for (unsigned i = 0; i < vm->ndevices; i++)
        trace_recorder_attach_disk(vm->trace, &vm->disk_sinks[i]);
    return 0;
}

int vm_trace_stop(struct vm *vm, int exit_status, char *err, size_t errlen)
{
    if (!vm->trace) {
        snprintf(err, errlen, "no trace is being recorded");
        return -ENOENT;
    }
    /* Stop forwarding through the recorder before it frees its wrapper sink. */
    vm->irq_target = vm->backend_sink;
    int rc = trace_recorder_close(vm->trace, exit_status, err, errlen);
    vm->trace = NULL;
    return rc;
}

/* Every disk a device names goes through the recording wrapper (idle until a trace). */
static int vm_open_disk(void *opaque, const char *path, int read_only, struct disk **out,
                        char *err, size_t errlen)
{
    struct disk *inner;
    int rc = disk_open(path, read_only, &inner, err, errlen);

    if (rc)
        return rc;
    rc = disk_tap_wrap(inner, opaque, out);
    if (rc)
        snprintf(err, errlen, "disk '%.200s': out of memory", path);
    return rc;
}

/* Frames a device exchanged with its host backend go into the trace being recorded. */
static void vm_host_io(void *opaque, int dir, const void *data, size_t len)
{
    struct vm_device_ref *ref = opaque;

    if (ref->vm->trace)
        trace_recorder_host_io(ref->vm->trace, ref->index, dir, data, len);
}

static int create_devices(struct vm *vm, char *err, size_t errlen)
{
    const struct irq_sink *sink = &vm->irq_sink;
    const struct clock *clock = vm->cpu_ops->clock(vm->cpu);

    for (unsigned i = 0; i < vm->mc.ndevices; i++) {
        const struct machine_device *d = &vm->mc.devices[i];
        struct device_env env = {
            .mem = &vm->mem,
            .clock = clock,
            .irq = { d->irq >= 0 ? sink : NULL, d->irq >= 0 ? (unsigned)d->irq : 0 },
            .base = d->base,
            .windows = d->nwindows ? d->windows : NULL,
            .nwindows = d->nwindows,
            .seed = machine_device_seed(vm->mc.seed, i),
            .deterministic = !strcmp(vm->cpu_ops->name, "sim"),
            .log = stderr,
            .request_exit = vm_request_exit,
            .request_exit_opaque = vm,
            .open_disk = vm_open_disk,
            .open_disk_opaque = &vm->disk_sinks[i],
            .host_io = vm_host_io,
            .host_io_opaque = &vm->device_refs[i],
        };
        vm->device_refs[i] = (struct vm_device_ref){ vm, (int)i };
        char derr[256] = "";
        vm->disk_sinks[i].dev = i;
        int rc = device_create(&vm->devices[i], d->kind, d->args, &env,
                               d->space == BUS_PIO ? &vm->pio : &vm->mmio, derr, sizeof(derr));
        if (rc) {
            snprintf(err, errlen, "%s", derr);
            return rc;
        }
        vm->ndevices = i + 1;
    }
    return 0;
}

/* Guest arguments, then one virtio_mmio.device= entry per virtio device, the way QEMU
 * microvm (acpi=off) and Firecracker describe them to Linux. */
static int build_cmdline(const struct vm *vm, const struct vm_options *opt, char *out,
                         size_t outlen, char *err, size_t errlen)
{
    size_t n = 0;
    int w;

    out[0] = '\0';
    if (opt->cmdline) {
        w = snprintf(out, outlen, "%s", opt->cmdline);
        if (w < 0 || (size_t)w >= outlen)
            goto too_long;
        n = (size_t)w;
    }
    for (unsigned i = 0; i < opt->nguest_args; i++) {
        w = snprintf(out + n, outlen - n, "%s%s", n ? " " : "", opt->guest_args[i]);
        if (w < 0 || (size_t)w >= outlen - n)
            goto too_long;
        n += (size_t)w;
    }
    for (unsigned i = 0; i < vm->mc.ndevices; i++) {
        const struct machine_device *d = &vm->mc.devices[i];
        if (!is_virtio(d))
            continue;
        w = snprintf(out + n, outlen - n, "%svirtio_mmio.device=4K@%#llx:%d", n ? " " : "",
                     (unsigned long long)d->base, d->irq);
        if (w < 0 || (size_t)w >= outlen - n)
            goto too_long;
        n += (size_t)w;
    }
    return 0;
too_long:
    snprintf(err, errlen, "guest command line is longer than %zu bytes", outlen - 1);
    return -E2BIG;
}

static int check_mem(uint64_t mem, char *err, size_t errlen)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint64_t host = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;

    if (mem < MIN_MEM) {
        snprintf(err, errlen, "--mem %llu is too small: the minimum is 2M",
                 (unsigned long long)mem);
        return -EINVAL;
    }
    if (host && mem > host) {
        snprintf(err, errlen, "--mem %llu is larger than this host's %llu MiB of RAM",
                 (unsigned long long)mem, (unsigned long long)(host >> 20));
        return -ENOMEM;
    }
    return 0;
}

/* Reads the guest program at `path` and places it in guest memory with `load` (the x86 PVH
 * or the arm64 ELF loader); a loader error is prefixed with the path. */
static int load_program_image(struct vm *vm, const char *path,
                              int (*load)(struct guest_mem *, const uint8_t *, size_t,
                                          struct pvh_image *, char *, size_t),
                              struct pvh_image *pi, char *err, size_t errlen)
{
    uint8_t *img;
    size_t len;
    int rc = loader_read_file(path, &img, &len, err, errlen);

    if (rc)
        return rc;
    rc = load(&vm->mem, img, len, pi, err, errlen);
    free(img);
    if (rc) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s: %s", path, err);
        snprintf(err, errlen, "%s", msg);
    }
    return rc;
}

static int load_program(struct vm *vm, const struct vm_options *opt, struct cpu_boot *boot,
                        char *err, size_t errlen)
{
    struct pvh_image pi;
    char cmdline[MEMMAP_CMDLINE_MAX];
    uint64_t start_info;
    int rc = load_program_image(vm, opt->program, loader_pvh_load, &pi, err, errlen);

    if (rc)
        return rc;
    rc = build_cmdline(vm, opt, cmdline, sizeof(cmdline), err, errlen);
    if (rc)
        return rc;

    void *fdt = guest_mem_host(&vm->mem, MEMMAP_FDT_ADDR, MEMMAP_FDT_MAX);
    if (!fdt)
        return -EFAULT;
    uint64_t tsc_khz = vm->cpu_ops->tsc_khz ? vm->cpu_ops->tsc_khz(vm->cpu) : 0;
    /* libfdt clears the whole buffer it is given, and each page it touches is a page
     * fault at boot: try a small window first, the whole area only when the tree needs it. */
    rc = fdt_build(fdt, 8192, &vm->mc, cmdline, tsc_khz, err, errlen);
    if (rc == -ENOSPC)
        rc = fdt_build(fdt, MEMMAP_FDT_MAX, &vm->mc, cmdline, tsc_khz, err, errlen);
    if (rc)
        return rc;
    struct pvh_module mod = { MEMMAP_FDT_ADDR, MEMMAP_FDT_MAX };
    rc = loader_pvh_start_info(&vm->mem, cmdline, &mod, 1, 0, &start_info, err, errlen);
    if (rc)
        return rc;
    *boot = (struct cpu_boot){ CPU_BOOT_PVH32, pi.entry, start_info };
    return 0;
}

/* The arm64 device tree at MEMMAP_FDT_ADDR (the kernel's or the program's X0). */
static int install_fdt_arm64(struct vm *vm, const char *cmdline, uint64_t initrd_addr,
                             uint64_t initrd_size, char *err, size_t errlen)
{
    void *fdt = guest_mem_host(&vm->mem, MEMMAP_FDT_ADDR, MEMMAP_FDT_MAX);
    struct fdt_arm64_config cfg = {
        .mc = &vm->mc,
        .cmdline = cmdline,
        .gic_version = vm->cpu_ops->gic_version ? vm->cpu_ops->gic_version(vm->cpu) : 3,
        .timer_khz = vm->cpu_ops->tsc_khz ? vm->cpu_ops->tsc_khz(vm->cpu) : 0,
        .initrd_addr = initrd_addr,
        .initrd_size = initrd_size,
    };

    if (!fdt)
        return -EFAULT;
    return fdt_build_arm64(fdt, MEMMAP_FDT_MAX, &cfg, err, errlen);
}

/* An arm64 guest program: EM_AARCH64 ELF, entered at EL1 with the FDT in X0; the command
 * line is the FDT's /chosen/bootargs. */
static int load_program_arm64(struct vm *vm, const struct vm_options *opt,
                              struct cpu_boot *boot, char *err, size_t errlen)
{
    struct pvh_image pi;
    char cmdline[MEMMAP_CMDLINE_MAX];
    int rc = load_program_image(vm, opt->program, loader_arm64_elf_load, &pi, err, errlen);

    if (rc)
        return rc;
    rc = build_cmdline(vm, opt, cmdline, sizeof(cmdline), err, errlen);
    if (!rc)
        rc = install_fdt_arm64(vm, cmdline, 0, 0, err, errlen);
    if (rc)
        return rc;
    *boot = (struct cpu_boot){ CPU_BOOT_ARM64, pi.entry, MEMMAP_FDT_ADDR };
    return 0;
}

/* Linux arm64: the Image (loader_arm64.c), initrd, FDT; console on the 16550 (ttyS0). */
static int load_kernel_arm64(struct vm *vm, const struct vm_options *opt,
                             struct cpu_boot *boot, char *err, size_t errlen)
{
    char cmdline[MEMMAP_CMDLINE_MAX];
    struct vm_options o = *opt;
    char base[MEMMAP_CMDLINE_MAX];
    struct arm64_kernel k;

    if (snprintf(base, sizeof(base), "console=ttyS0 panic=-1%s%s", opt->cmdline ? " " : "",
                 opt->cmdline ? opt->cmdline : "") >= (int)sizeof(base)) {
        snprintf(err, errlen, "--cmdline is longer than %zu bytes", sizeof(base) - 40);
        return -E2BIG;
    }
    o.cmdline = base;
    int rc = build_cmdline(vm, &o, cmdline, sizeof(cmdline), err, errlen);
    if (!rc)
        rc = loader_arm64_load(&vm->mem, opt->kernel, opt->initrd, &k, err, errlen);
    if (!rc)
        rc = install_fdt_arm64(vm, cmdline, k.initrd_addr, k.initrd_size, err, errlen);
    if (rc)
        return rc;
    *boot = (struct cpu_boot){ CPU_BOOT_ARM64, k.entry, MEMMAP_FDT_ADDR };
    return 0;
}

static void timed_request_fire(void *arg)
{
    struct timed_request *t = arg;
    t->fired = 1;           /* before running it: a snapshot it takes must not repeat it */
    char *resp = control_handle_message(&vm_control_ops, t->vm, t->json, strlen(t->json));

    if (!t->vm->quiet)
        fprintf(stderr, "vmlab: at %llu ns: %s -> %s\n", (unsigned long long)t->at_ns, t->json,
                resp ? resp : "(out of memory)");
    free(resp);
    t->fired = 2;           /* done: vm_schedule_request may reuse its place */
}

unsigned vm_timed_room(struct vm *vm)
{
    /* Requests that have run are forgotten (input gestures schedule many over a run);
     * one still running (fired == 1) is not. */
    unsigned kept = 0;

    for (unsigned i = 0; i < vm->ntimed; i++) {
        if (vm->timed[i]->fired == 2)
            free(vm->timed[i]);
        else
            vm->timed[kept++] = vm->timed[i];
    }
    vm->ntimed = kept;
    return VM_MAX_ARGS - kept;
}

int vm_schedule_request(struct vm *vm, uint64_t at_ns, const char *json, char *err,
                        size_t errlen)
{
    const struct clock *c = vm->cpu_ops->clock(vm->cpu);
    size_t len = strlen(json);
    struct timed_request *t;

    if (!vm_timed_room(vm)) {
        snprintf(err, errlen, "--at: at most %d timed requests", VM_MAX_ARGS);
        return -ENOSPC;
    }
    t = malloc(sizeof(*t) + len + 1);
    if (!t)
        return -ENOMEM;
    t->vm = vm;
    t->at_ns = at_ns;
    t->fired = 0;
    memcpy(t->json, json, len + 1);
    int64_t id = c->schedule(c->opaque, at_ns, timed_request_fire, t);
    t->id = id;
    if (id < 0) {
        free(t);
        snprintf(err, errlen, "--at %llu: cannot schedule: %s", (unsigned long long)at_ns,
                 strerror((int)-id));
        return (int)id;
    }
    vm->timed[vm->ntimed++] = t;
    return 0;
}

int vm_restore_request(struct vm *vm, uint64_t at_ns, int64_t id, const char *json,
                       char *err, size_t errlen)
{
    size_t len = strlen(json);
    struct timed_request *t;

    if (vm->ntimed == VM_MAX_ARGS || !vm->cpu_ops->restore_timer) {
        snprintf(err, errlen, "too many timed requests (at most %d)", VM_MAX_ARGS);
        return -ENOSPC;
    }
    t = malloc(sizeof(*t) + len + 1);
    if (!t)
        return -ENOMEM;
    *t = (struct timed_request){ .vm = vm, .at_ns = at_ns, .id = id };
    memcpy(t->json, json, len + 1);
    int64_t got = vm->cpu_ops->restore_timer(vm->cpu, at_ns, id, timed_request_fire, t);
    if (got < 0) {
        free(t);
        snprintf(err, errlen, "timed request id %lld at %llu ns cannot be re-created",
                 (long long)id, (unsigned long long)at_ns);
        return (int)got;
    }
    vm->timed[vm->ntimed++] = t;
    return 0;
}

static int vm_wake_fd(void *opaque)
{
    return ((struct vm *)opaque)->wake_fd;
}

/* Adds fd to the epoll set that is the backend's wake_fd (KVM wakes its vCPU loop when it
 * turns readable, and runs vm_poll). Best effort: an fd not in it is served at the
 * periodic poll. Level-triggered: each fd must stop being readable once vm_poll served it
 * (the devices' and the control server's sets are edge-triggered inside; an input source
 * reads what waits and closes at end of stream). */
static void watch_fd(struct vm *vm, int fd)
{
    struct epoll_event e = { .events = EPOLLIN };

    if (fd < 0)
        return;
    if (vm->wake_fd < 0 && (vm->wake_fd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return;
    epoll_ctl(vm->wake_fd, EPOLL_CTL_ADD, fd, &e);
}

/* The devices' host sockets (virtio-vsock's). */
static void watch_device_fds(struct vm *vm)
{
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct device *d = &vm->devices[i];
        watch_fd(vm, d->type->poll_fd ? d->type->poll_fd(d->state) : -1);
    }
}

/* Guest RAM, buses, the CPU backend and the devices of vm->mc: the part a fresh boot and
 * a restore share. */
static int build_machine(struct vm *vm, uint64_t max_insns, char *err, size_t errlen)
{
    int rc;

    if (guest_mem_init(&vm->mem, vm->mc.ram_size)) {
        snprintf(err, errlen, "guest RAM of %llu bytes: the host refused the allocation",
                 (unsigned long long)vm->mc.ram_size);
        return -ENOMEM;
    }
    bus_init(&vm->mmio, BUS_MMIO);
    bus_init(&vm->pio, BUS_PIO);
    vm->env = (struct cpu_env){
        .mem = &vm->mem, .mmio = &vm->mmio, .pio = &vm->pio, .stats = &vm->stats,
        .stop_requested = &vm->stop_requested, .max_insns = max_insns, .seed = vm->mc.seed,
        .host_tsc = vm->host_tsc,
        /* Set before the backend copies the env; it does nothing until a socket exists. */
        .poll = vm_poll, .poll_opaque = vm, .wake_fd = vm_wake_fd,
    };
    vm->wake_fd = -1;
    rc = vm->cpu_ops->create(&vm->env, &vm->cpu);
    if (rc) {
        snprintf(err, errlen, "%s backend: create failed: %s", vm->cpu_ops->name, strerror(-rc));
        return rc;
    }
    vm->backend_sink = vm->irq_target = vm->cpu_ops->irq_sink(vm->cpu);
    vm->irq_sink = (struct irq_sink){ vm_irq_set_level, vm };
    rc = create_devices(vm, err, errlen);
    if (!rc)
        watch_device_fds(vm);
    return rc;
}

/* What a run adds around the machine: trace, control socket, timed requests. A restored
 * run's trace starts mid-run (replay refuses it rather than report a false divergence). */
static int attach_run_services(struct vm *vm, const struct vm_options *opt, int mid_run,
                               char *err, size_t errlen)
{
    int rc = 0;

    if (opt->trace)
        rc = vm_trace_start(vm, opt->trace, mid_run, err, errlen);
    if (!rc && opt->socket) {
        rc = control_server_open(&vm->control, opt->socket, &vm_control_ops, vm, err, errlen);
        if (!rc)        /* KVM serves a request when it comes, not at the 4 ms poll */
            watch_fd(vm, control_server_wake_fd(vm->control));
    }
    if (!rc && (opt->socket || opt->vsock))
        vm->env.external_wakeups = 1;   /* a client may still wake an idle guest (KVM) */
    for (unsigned i = 0; !rc && i < vm->ninput_src; i++) {
        rc = input_source_open(&vm->input_src[i], vm->input_path[i], vm->input_dev[i], err,
                               errlen);
        if (!rc)
            watch_fd(vm, vm->input_src[i].fd);
        vm->env.external_wakeups = 1;   /* so may an input socket */
    }
    for (unsigned i = 0; !rc && i < opt->nat; i++)
        rc = vm_schedule_request(vm, opt->at[i].at_ns, opt->at[i].json, err, errlen);
    return rc;
}

/* vmlab run --restore: the machine from the snapshot, then its state; nothing is loaded
 * or booted. */
static int vm_create_restored(struct vm *vm, const struct vm_options *opt, char *err,
                              size_t errlen)
{
    struct snapshot_reader r;
    uint64_t max_insns = 0;
    int rc = snapshot_reader_open(&r, opt->restore, err, errlen);

    if (rc)
        return rc == -ENOENT || rc == -EACCES ? rc : -EINVAL;
    rc = vm_snapshot_read_machine(&r, &vm->mc, &max_insns, err, errlen);
    if (!rc && strcmp(vm->mc.backend, "sim")) {
        snprintf(err, errlen, "snapshot %s: backend '%s': only sim snapshots can be restored",
                 opt->restore, vm->mc.backend);
        rc = -EINVAL;
    }
    if (!rc) {
        char merr[200];
        rc = check_mem(vm->mc.ram_size, merr, sizeof(merr));
        if (rc)
            snprintf(err, errlen, "snapshot %s: chunk 'MACH': RAM size: %s", opt->restore, merr);
    }
    if (!rc)
        rc = pick_backend(vm, "sim", opt->quiet, err, errlen);
    /* --serial replaces the UART output; its scripted input stays the saved one */
    for (unsigned i = 0; !rc && opt->serial && i < vm->mc.ndevices; i++) {
        struct machine_device *d = &vm->mc.devices[i];
        char in[DEVICE_ARGS_MAX] = "";
        if (strcmp(d->kind, "uart8250"))
            continue;
        int has_in = device_arg_get(d->args, "in", in, sizeof(in)) == 1;
        if (snprintf(d->args, sizeof(d->args), "out=%s%s%s", opt->serial, has_in ? ",in=" : "",
                     has_in ? in : "") >= (int)sizeof(d->args)) {
            snprintf(err, errlen, "--serial: longer than %zu bytes", sizeof(d->args) - 1);
            rc = -EINVAL;
        }
    }
    if (!rc)
        rc = build_machine(vm, max_insns, err, errlen);
    if (!rc)
        rc = vm_snapshot_load_state(vm, &r, err, errlen);
    snapshot_reader_close(&r);
    return rc;
}

/* A Linux bzImage (the 64-bit boot protocol) or a vmlinux with the PVH note. The serial console, reset through the i8042
 * and the virtio_mmio.device= entries are added to what the user gave; ACPI tables
 * (vmm/acpi_build.h) describe the same devices. */
static int load_kernel(struct vm *vm, const struct vm_options *opt, struct cpu_boot *boot,
                       char *err, size_t errlen)
{
    char cmdline[MEMMAP_CMDLINE_MAX];
    struct vm_options o = *opt;
    char base[MEMMAP_CMDLINE_MAX];

    if (snprintf(base, sizeof(base), "console=ttyS0 reboot=k panic=-1%s%s",
                 opt->cmdline ? " " : "", opt->cmdline ? opt->cmdline : "")
        >= (int)sizeof(base)) {
        snprintf(err, errlen, "--cmdline is longer than %zu bytes", sizeof(base) - 40);
        return -E2BIG;
    }
    o.cmdline = base;
    int rc = build_cmdline(vm, &o, cmdline, sizeof(cmdline), err, errlen);
    if (rc)
        return rc;
    rc = loader_linux_load(&vm->mem, opt->kernel, opt->initrd, cmdline, MEMMAP_ACPI_ADDR, boot,
                           err, errlen);
    /* ACPI describes the devices to kernels without CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES. */
    if (!rc)
        rc = acpi_install(&vm->mem, &vm->mc, err, errlen);
    if (!rc && boot->mode == CPU_BOOT_LINUX64)     /* a PVH vmlinux has it in its start info */
        rc = loader_linux_set_rsdp(&vm->mem, MEMMAP_ACPI_ADDR);
    return rc;
}

int vm_create(struct vm **out, const struct vm_options *opt, char *err, size_t errlen)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    struct cpu_boot boot;
    int rc;

    *out = NULL;
    if (!vm)
        return -ENOMEM;
    vm->wake_fd = -1;
    vm->quiet = opt->quiet;
    if (opt->restore) {
        rc = vm_create_restored(vm, opt, err, errlen);
        if (!rc)
            rc = attach_run_services(vm, opt, 1, err, errlen);
        if (rc)
            goto fail;
        *out = vm;
        return 0;
    }
    rc = check_mem(opt->mem, err, errlen);
    if (!rc)
        rc = pick_backend(vm, opt->cpu ? opt->cpu : VM_DEFAULT_CPU, opt->quiet, err, errlen);
    if (!rc && opt->max_insns && strcmp(vm->cpu_ops->name, "sim")) {
        snprintf(err, errlen, "--max-insns counts instructions, which only the software CPU "
                 "can do; it does not work with --cpu %s", vm->cpu_ops->name);
        rc = -EINVAL;
    }
    if (!rc)
        rc = describe_machine(vm, opt, err, errlen);
    vm->host_tsc = opt->host_tsc;
    if (!rc)
        rc = build_machine(vm, opt->max_insns, err, errlen);
    if (!rc)
        rc = VM_ARM64 ? (opt->kernel ? load_kernel_arm64(vm, opt, &boot, err, errlen)
                                     : load_program_arm64(vm, opt, &boot, err, errlen))
                      : opt->kernel ? load_kernel(vm, opt, &boot, err, errlen)
                                    : load_program(vm, opt, &boot, err, errlen);
    /* Recording starts after the loader wrote the guest: its copies are not DMA. */
    if (!rc)
        rc = attach_run_services(vm, opt, 0, err, errlen);
    if (rc)
        goto fail;
    rc = vm->cpu_ops->boot(vm->cpu, &boot);
    if (rc) {
        snprintf(err, errlen, "%s backend: boot failed: %s", vm->cpu_ops->name, strerror(-rc));
        goto fail;
    }
    *out = vm;
    return 0;
fail:
    vm_destroy(vm);
    return rc;
}

int vm_run(struct vm *vm, struct cpu_stop *stop)
{
    int rc;

    memset(stop, 0, sizeof(*stop));
    rc = vm->cpu_ops->run(vm->cpu, stop);
    if (rc) {
        if (!stop->detail[0])
            snprintf(stop->detail, sizeof(stop->detail), "backend error: %s", strerror(-rc));
        stop->reason = CPU_STOP_ERROR;
    }
    switch (stop->reason) {
    case CPU_STOP_REQUESTED:
        return vm->exit_status_set ? vm->exit_status : VM_EXIT_OK;
    case CPU_STOP_SHUTDOWN:
        return VM_EXIT_OK;
    case CPU_STOP_HALTED:
        return VM_EXIT_GUEST_HUNG;
    case CPU_STOP_FAULT:
    case CPU_STOP_TRIPLE_FAULT:
        return VM_EXIT_GUEST_FAULT;
    case CPU_STOP_INSN_LIMIT:
        return VM_EXIT_INSN_LIMIT;
    case CPU_STOP_ERROR:
    default:
        return VM_EXIT_INTERNAL;
    }
}

int vm_finish(struct vm *vm, int status, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (vm->control) {
        control_server_close(vm->control);
        vm->control = NULL;
    }
    /* The recorder wants the devices gone first (a device may lower its line while being
     * destroyed), but the buses and memory still there. */
    for (unsigned i = vm->ndevices; i-- > 0;)
        device_destroy(&vm->devices[i]);
    vm->ndevices = 0;
    if (vm->trace && vm_trace_stop(vm, status, err, errlen))
        return VM_EXIT_INTERNAL;
    return status;
}

#if defined(__SANITIZE_ADDRESS__)
#define VM_FULL_TEARDOWN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VM_FULL_TEARDOWN 1
#endif
#endif
#ifndef VM_FULL_TEARDOWN
#define VM_FULL_TEARDOWN 0
#endif

static void vm_teardown(struct vm *vm, int engine_and_ram);

void vm_destroy(struct vm *vm)
{
    vm_teardown(vm, 1);
}

void vm_destroy_before_exit(struct vm *vm)
{
    vm_teardown(vm, VM_FULL_TEARDOWN);
}

static void vm_teardown(struct vm *vm, int engine_and_ram)
{
    char err[256];

    if (!vm)
        return;
    if (vm->control)
        control_server_close(vm->control);
    for (unsigned i = 0; i < vm->ninput_src; i++)
        input_source_close(&vm->input_src[i]);
    for (unsigned i = vm->ndevices; i-- > 0;)
        device_destroy(&vm->devices[i]);
    if (vm->trace)
        vm_trace_stop(vm, VM_EXIT_INTERNAL, err, sizeof(err));
    if (!engine_and_ram)
        return;
    if (vm->cpu) {
        vm->cpu_ops->destroy(vm->cpu);      /* its wake watcher first, then the fd */
        if (vm->wake_fd >= 0)
            close(vm->wake_fd);
    }
    guest_mem_destroy(&vm->mem);
    for (unsigned i = 0; i < vm->ntimed; i++)
        free(vm->timed[i]);
    free(vm);
}

static const char *const stop_names[] = {
    [CPU_STOP_REQUESTED] = "stop requested",
    [CPU_STOP_SHUTDOWN] = "guest shut down",
#if defined(__aarch64__)
    [CPU_STOP_HALTED] = "guest hung: WFI with nothing that can wake it",
#else
    [CPU_STOP_HALTED] = "guest hung: HLT with nothing that can wake it",
#endif
    [CPU_STOP_FAULT] = "guest fault",
    [CPU_STOP_TRIPLE_FAULT] = "guest triple fault",
    [CPU_STOP_INSN_LIMIT] = "instruction limit reached (--max-insns)",
    [CPU_STOP_ERROR] = "internal error in the CPU backend",
};

void vm_print_stop(const struct cpu_stop *stop, FILE *f)
{
    unsigned r = stop->reason < sizeof(stop_names) / sizeof(stop_names[0]) ? stop->reason : 0;

    fprintf(f, "vmlab: VM stopped: %s\n", stop_names[r]);
    if (stop->detail[0])
        fprintf(f, "  detail:     %s\n", stop->detail);
    fprintf(f, "  rip:        0x%016llx\n", (unsigned long long)stop->rip);
    fprintf(f, "  fault addr: 0x%016llx\n", (unsigned long long)stop->fault_addr);
    fprintf(f, "  last %u exits (oldest first):\n", stop->nrecent);
    for (unsigned i = 0; i < stop->nrecent && i < CPU_RECENT_EXITS; i++) {
        const struct cpu_exit_record *e = &stop->recent[i];
        fprintf(f, "    insn %-12llu rip %#010llx %-10s addr %#010llx size %u value %#llx\n",
                (unsigned long long)e->insns, (unsigned long long)e->rip,
                e->kind < EXIT_KIND_COUNT ? exit_kind_names[e->kind] : "?",
                (unsigned long long)e->addr, e->size, (unsigned long long)e->value);
    }
}

void vm_print_stats(const struct vm *vm, FILE *f)
{
    fprintf(f, "stats: backend %s\n", vm->cpu_ops->name);
    fprintf(f, "stats: instructions %llu\n", (unsigned long long)vm->stats.insns);
    fprintf(f, "stats: virtual_ns %llu\n", (unsigned long long)vm->stats.virtual_ns);
    fprintf(f, "stats: exits");
    for (int k = 0; k < EXIT_KIND_COUNT; k++)
        fprintf(f, " %s=%llu", exit_kind_names[k], (unsigned long long)vm->stats.exits[k]);
    fprintf(f, "\n");
}
