/* A fake VM behind control_vm_ops, shared by the control-socket test, fuzzer and
 * benchmark: plain state that a command changes only when it succeeds. */
#ifndef VMLAB_TESTS_CONTROL_FAKE_VM_H
#define VMLAB_TESTS_CONTROL_FAKE_VM_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "vmm/control.h"
#include "vmm/control_proto.h"

#define FAKE_DISKS 2

struct fake_vm {
    int stopped;
    int suspended;
    int tracing;
    uint64_t disk_size[FAKE_DISKS];
    char snapshot_path[256];
    unsigned snapshots;
    char plan[256];
    unsigned plan_disk;
    char trace_path[256];
    unsigned changes;           /* successful state-changing commands */
    struct vm_stats stats;
};

static inline void fake_vm_init(struct fake_vm *vm)
{
    memset(vm, 0, sizeof *vm);
    vm->disk_size[0] = 1 << 20;
    vm->disk_size[1] = 8 << 20;
    vm->stats.insns = 123456;
    vm->stats.virtual_ns = 7890;
    vm->stats.exits[EXIT_MMIO_WRITE] = 42;
}

static inline int fake_stop(void *p, char *err, size_t errlen)
{
    struct fake_vm *vm = p;

    (void)err; (void)errlen;
    vm->stopped = 1;
    vm->changes++;
    return 0;
}

static inline int fake_suspend(void *p, char *err, size_t errlen)
{
    struct fake_vm *vm = p;

    if (vm->suspended) {
        snprintf(err, errlen, "suspend: the VM is already suspended");
        return -EALREADY;
    }
    vm->suspended = 1;
    vm->changes++;
    return 0;
}

static inline int fake_resume(void *p, char *err, size_t errlen)
{
    struct fake_vm *vm = p;

    if (!vm->suspended) {
        snprintf(err, errlen, "resume: the VM is not suspended");
        return -EALREADY;
    }
    vm->suspended = 0;
    vm->changes++;
    return 0;
}

static inline int fake_stats(void *p, struct json_object *out, char *err, size_t errlen)
{
    struct fake_vm *vm = p;
    struct json_object *q = json_object_new_array(), *e = json_object_new_object();

    (void)err; (void)errlen;
    json_object_object_add(e, "device", json_object_new_string("virtio-blk"));
    json_object_object_add(e, "queue", json_object_new_int(0));
    json_object_object_add(e, "requests", json_object_new_int(17));
    json_object_array_add(q, e);
    json_object_object_add(out, "queues", q);
    return control_stats_fill(out, vm->suspended ? "suspended" : "running", &vm->stats);
}

static inline int fake_disk_resize(void *p, unsigned index, uint64_t size, char *err,
                                   size_t errlen)
{
    struct fake_vm *vm = p;

    if (index >= FAKE_DISKS) {
        snprintf(err, errlen, "field \"index\": no disk %u (the VM has %d)", index, FAKE_DISKS);
        return -ENODEV;
    }
    if (size % 512) {
        snprintf(err, errlen, "field \"size\": %llu is not a multiple of 512",
                 (unsigned long long)size);
        return -EINVAL;
    }
    vm->disk_size[index] = size;
    vm->changes++;
    return 0;
}

static inline int fake_snapshot_take(void *p, const char *path, char *err, size_t errlen)
{
    struct fake_vm *vm = p;

    if (strlen(path) >= sizeof vm->snapshot_path) {
        snprintf(err, errlen, "field \"path\": too long");
        return -ENAMETOOLONG;
    }
    snprintf(vm->snapshot_path, sizeof vm->snapshot_path, "%s", path);
    vm->snapshots++;
    vm->changes++;
    return 0;
}

static inline int fake_fault_inject(void *p, unsigned disk, const char *plan, char *err,
                                    size_t errlen)
{
    struct fake_vm *vm = p;

    if (disk >= FAKE_DISKS) {
        snprintf(err, errlen, "field \"disk\": no disk %u", disk);
        return -ENODEV;
    }
    if (strncmp(plan, "seed=", 5) != 0 || strlen(plan) >= sizeof vm->plan) {
        snprintf(err, errlen, "field \"plan\": \"%.40s\" does not start with seed=", plan);
        return -EINVAL;
    }
    snprintf(vm->plan, sizeof vm->plan, "%s", plan);
    vm->plan_disk = disk;
    vm->changes++;
    return 0;
}

static inline int fake_trace_start(void *p, const char *path, char *err, size_t errlen)
{
    struct fake_vm *vm = p;

    if (vm->tracing) {
        snprintf(err, errlen, "trace start: already tracing to %s", vm->trace_path);
        return -EBUSY;
    }
    if (strlen(path) >= sizeof vm->trace_path) {
        snprintf(err, errlen, "field \"path\": too long");
        return -ENAMETOOLONG;
    }
    snprintf(vm->trace_path, sizeof vm->trace_path, "%s", path);
    vm->tracing = 1;
    vm->changes++;
    return 0;
}

static inline int fake_trace_stop(void *p, char *err, size_t errlen)
{
    struct fake_vm *vm = p;

    if (!vm->tracing) {
        snprintf(err, errlen, "trace stop: no trace is being recorded");
        return -EALREADY;
    }
    vm->tracing = 0;
    vm->changes++;
    return 0;
}

static const struct control_vm_ops fake_vm_ops = {
    .stop = fake_stop,
    .suspend = fake_suspend,
    .resume = fake_resume,
    .stats = fake_stats,
    .disk_resize = fake_disk_resize,
    .snapshot_take = fake_snapshot_take,
    .fault_inject = fake_fault_inject,
    .trace_start = fake_trace_start,
    .trace_stop = fake_trace_stop,
};

#endif
