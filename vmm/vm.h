/* One virtual machine: guest memory, buses, devices, a CPU backend, the boot image, and the
 * run loop. `vmlab run` is a thin layer over this. */
#ifndef VMLAB_VM_H
#define VMLAB_VM_H

#include <stdint.h>

#include "bus.h"
#include "cpu_backend.h"
#include "guest_mem.h"
#include "machine.h"
#include "stats.h"
#include "devices/device.h"
#include "traces/disk_tap.h"
#include "input_source.h"

#define VM_MAX_BLOCKS 8
#define VM_MAX_ARGS 64
#define VM_MAX_INPUTS 4

/* --cpu's default: the software CPU on x86_64; KVM, the only backend, on arm64. */
#if defined(__aarch64__)
#define VM_DEFAULT_CPU "kvm"
#else
#define VM_DEFAULT_CPU "sim"
#endif

struct vm_options {
    const char *program;            /* PVH ELF guest program */
    const char *kernel;             /* or a Linux bzImage */
    const char *initrd;
    const char *cmdline;            /* extra kernel command line (Linux) */
    const char *guest_args[VM_MAX_ARGS];
    unsigned nguest_args;
    uint64_t mem;                   /* bytes */
    uint64_t seed;
    int host_tsc;                   /* --tsc host: RDTSC reads the host TSC (software CPU) */
    const char *rtc_base;           /* --rtc-base: CMOS clock start, s since 1970 (NULL: default) */
    const char *cpu;                /* "sim", "kvm", "auto" */
    const char *serial;             /* "stdio", "none" or a path */
    const char *serial_in;          /* scripted input, escapes as in device args */
    uint64_t max_insns;
    const char *blocks[VM_MAX_BLOCKS];  /* PATH[,ro][,id=NAME] or mem=SIZE[,...] */
    unsigned nblocks;
    const char *console;            /* virtio-console args, NULL for none */
    int rng;                        /* add a virtio-rng */
    const char *net;                /* virtio-net: user[,hostfwd=...], tap=NAME, tapfd=N */
    const char *vsock;              /* virtio-vsock args (cid=N,uds=PATH), NULL for none */
    const char *inputs[VM_MAX_INPUTS];  /* virtio-input args: kind=KIND[,width=..] */
    unsigned ninputs;
    const char *balloon;            /* virtio-balloon args, NULL for none */
    const char *trace;              /* record a trace to this path */
    const char *socket;             /* control socket path */
    /* Control requests at fixed virtual times (--at NS:JSON): deterministic on the
     * software CPU, the way scenarios script a run. */
    struct vm_timed_request { uint64_t at_ns; const char *json; } at[VM_MAX_ARGS];
    unsigned nat;
    int quiet;                      /* no "using kvm" style notes */
    /* Continue from a snapshot (vmlab run --restore): the machine, RAM, CPU, devices and
     * pending --at requests come from the file; program/kernel/mem/blocks are not used.
     * `serial`, when not NULL, replaces the UART output of the saved machine. */
    const char *restore;
};

struct vm {
    struct machine_config mc;
    struct guest_mem mem;
    struct bus mmio, pio;
    struct device devices[MACHINE_MAX_DEVICES];
    unsigned ndevices;
    const struct cpu_backend_ops *cpu_ops;
    struct cpu *cpu;
    struct cpu_env env;
    int wake_fd;                    /* epoll set: devices' poll fds, control, input; or -1 */
    int host_tsc;                   /* --tsc host, handed to the backend in env */
    struct vm_stats stats;
    volatile int stop_requested;
    int exit_status;                /* set by the exit device or a control stop */
    int exit_status_set;
    struct trace_recorder *trace;
    /* Per device: its file-backed disk's recording wrapper reports through this, so a
     * trace carries what replay needs from the disk (traces/disk_tap.h). */
    struct disk_tap_sink disk_sinks[MACHINE_MAX_DEVICES];
    struct control_server *control;
    int suspended;
    /* Devices raise interrupts through vm_irq_sink, which forwards to irq_target: the
     * backend's sink, or the trace recorder's wrapper of it while a trace records. This
     * indirection lets `trace start` begin recording in the middle of a run. */
    struct irq_sink irq_sink;
    const struct irq_sink *irq_target;
    const struct irq_sink *backend_sink;
    /* Each device's host_io opaque: which device a backend's frames belong to. */
    struct vm_device_ref { struct vm *vm; int index; } device_refs[MACHINE_MAX_DEVICES];
    struct timed_request *timed[VM_MAX_ARGS];   /* --at requests, freed with the VM */
    unsigned ntimed;
    int quiet;
    /* --input ...,path=SOCKET: the sockets, and (until connected) their paths/devices. */
    struct input_source input_src[VM_MAX_INPUTS];
    char input_path[VM_MAX_INPUTS][108];
    unsigned input_dev[VM_MAX_INPUTS];
    unsigned ninput_src;
};

/* A host message to device d (device_type.host_input), recorded in the trace when one is
 * being recorded. 0 or -errno with a message. */
int vm_host_input(struct vm *vm, struct device *d, const uint8_t *data, size_t len,
                  char *err, size_t errlen);

/* A --at request (vm.c); pending ones go into snapshots. */
struct timed_request {
    struct vm *vm;
    uint64_t at_ns;
    int64_t id;                     /* clock timer id */
    int fired;
    char json[];
};

/* Snapshots (vmm/vm_snapshot.c, format in vmm/SNAPSHOT.md). take writes the machine
 * config, the CPU, non-zero RAM pages, devices and pending --at requests to `path`; 0 or
 * -errno with a message (-ENOTSUP on a backend or device without snapshots). */
int vm_snapshot_take(struct vm *vm, const char *path, char *err, size_t errlen);
/* Restore, used by vm_create: reads the machine description (MACH chunk) ... */
struct snapshot_reader;
int vm_snapshot_read_machine(struct snapshot_reader *r, struct machine_config *mc,
                             uint64_t *max_insns, char *err, size_t errlen);
/* ... and, once the machine is built from it, CPU, RAM, devices and timed requests. */
int vm_snapshot_load_state(struct vm *vm, struct snapshot_reader *r, char *err,
                           size_t errlen);
/* Re-creates a pending --at request from a snapshot with its saved clock id. */
int vm_restore_request(struct vm *vm, uint64_t at_ns, int64_t id, const char *json,
                       char *err, size_t errlen);

/* Timed requests that can still be scheduled (requests that have run are forgotten). */
unsigned vm_timed_room(struct vm *vm);

/* Runs control request `json` when the VM's clock reaches at_ns (vm_control_ops). */
int vm_schedule_request(struct vm *vm, uint64_t at_ns, const char *json, char *err,
                        size_t errlen);

/* Starts / stops recording a trace (--trace at boot, or the control socket's trace
 * commands). 0 or -errno with a message. */
int vm_trace_start(struct vm *vm, const char *path, int mid_run, char *err, size_t errlen);
int vm_trace_stop(struct vm *vm, int exit_status, char *err, size_t errlen);

/* Control-socket operations on this VM (vmm/vm_control.c). */
struct control_vm_ops;
extern const struct control_vm_ops vm_control_ops;
void vm_poll(void *opaque);
/* Ends the run with `status` at the next exit (guest exit device, control stop). */
void vm_request_exit(void *vm, int status);


/* Builds the machine and loads the guest. 0 or -errno with a one-line message in err. */
int vm_create(struct vm **out, const struct vm_options *opt, char *err, size_t errlen);

/* Runs until the guest exits or faults. Returns the process exit status (HACKING.md
 * table) and fills *stop. */
int vm_run(struct vm *vm, struct cpu_stop *stop);

/* Ends the run: closes the trace and the control socket. Returns `status`, or an error
 * status with a message in err if finishing failed (e.g. the trace could not be written). */
int vm_finish(struct vm *vm, int status, char *err, size_t errlen);

void vm_destroy(struct vm *vm);

/* vm_destroy for a process that exits right after: devices, the trace and the control
 * socket are closed as usual, but the CPU engine and guest RAM are left to exit(), which
 * frees them in one go (unicorn's own teardown is about 4 % of a short guest's run).
 * Sanitizer builds tear everything down, so their leak checks keep their meaning. */
void vm_destroy_before_exit(struct vm *vm);

/* Prints the one-screen fault diagnostic. */
void vm_print_stop(const struct cpu_stop *stop, FILE *f);
void vm_print_stats(const struct vm *vm, FILE *f);

/* Exit statuses chosen by vmlab (all even; debug-exit statuses are odd). */
#define VM_EXIT_OK          0
#define VM_EXIT_USAGE       2
#define VM_EXIT_GUEST_FAULT 4
#define VM_EXIT_GUEST_HUNG  6
#define VM_EXIT_INSN_LIMIT  8
#define VM_EXIT_INTERNAL    10

#endif
