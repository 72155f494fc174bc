/* The control socket's view of a running VM: what each command does to it. All of this
 * runs on the vCPU thread, from the run loop's poll hook. */
#include "vm.h"
#include "control.h"
#include "control_proto.h"
#include "traces/record.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static int op_stop(void *opaque, char *err, size_t errlen)
{
    struct vm *vm = opaque;

    (void)err;
    (void)errlen;
    vm->suspended = 0;
    vm_request_exit(vm, VM_EXIT_OK);
    return 0;
}

static int op_suspend(void *opaque, char *err, size_t errlen)
{
    struct vm *vm = opaque;

    if (vm->suspended) {
        snprintf(err, errlen, "the VM is already suspended");
        return -EALREADY;
    }
    vm->suspended = 1;
    return 0;
}

static int op_resume(void *opaque, char *err, size_t errlen)
{
    struct vm *vm = opaque;

    if (!vm->suspended) {
        snprintf(err, errlen, "the VM is not suspended");
        return -EALREADY;
    }
    vm->suspended = 0;
    return 0;
}

static int op_stats(void *opaque, struct json_object *out, char *err, size_t errlen)
{
    struct vm *vm = opaque;
    struct json_object *devs;
    int rc = control_stats_fill(out, vm->suspended ? "suspended" : "running", &vm->stats);

    if (rc) {
        snprintf(err, errlen, "out of memory building stats");
        return rc;
    }
    devs = json_object_new_array();
    if (!devs)
        return -ENOMEM;
    json_object_object_add(out, "devices", devs);
    for (unsigned i = 0; i < vm->ndevices; i++) {
        const struct device *d = &vm->devices[i];
        struct json_object *o = json_object_new_object();
        if (!o)
            return -ENOMEM;
        json_object_array_add(devs, o);
        json_object_object_add(o, "name", json_object_new_string(d->name));
        json_object_object_add(o, "kind", json_object_new_string(d->kind));
        if (!d->type->num_queues || !d->type->queue_stats)
            continue;
        struct json_object *qs = json_object_new_array();
        if (!qs)
            return -ENOMEM;
        json_object_object_add(o, "queues", qs);
        for (unsigned q = 0; q < d->type->num_queues(d->state); q++) {
            uint64_t req = 0, notif = 0;
            struct json_object *qo = json_object_new_object();
            if (!qo)
                return -ENOMEM;
            d->type->queue_stats(d->state, q, &req, &notif);
            json_object_object_add(qo, "requests", json_object_new_int64((int64_t)req));
            json_object_object_add(qo, "notifies", json_object_new_int64((int64_t)notif));
            json_object_array_add(qs, qo);
        }
    }
    return 0;
}

/* The INDEX-th disk (virtio-blk devices, in machine order). */
static struct device *find_disk(struct vm *vm, unsigned index, char *err, size_t errlen)
{
    unsigned n = 0;

    for (unsigned i = 0; i < vm->ndevices; i++) {
        if (strcmp(vm->devices[i].kind, "virtio-blk"))
            continue;
        if (n++ == index)
            return &vm->devices[i];
    }
    snprintf(err, errlen, "index %u: this VM has %u disk%s", index, n, n == 1 ? "" : "s");
    return NULL;
}

static int op_disk_resize(void *opaque, unsigned index, uint64_t size, char *err,
                          size_t errlen)
{
    struct device *d = find_disk(opaque, index, err, errlen);

    if (!d)
        return -ENODEV;
    if (!d->type->resize) {
        snprintf(err, errlen, "disk %u (%s) cannot be resized", index, d->name);
        return -ENOTSUP;
    }
    return d->type->resize(d->state, size, err, errlen);
}

static int op_fault_inject(void *opaque, unsigned index, const char *plan, char *err,
                           size_t errlen)
{
    struct vm *vm = opaque;
    struct device *d = find_disk(vm, index, err, errlen);
    int rc;

    if (!d)
        return -ENODEV;
    if (!d->type->inject_fault) {
        snprintf(err, errlen, "disk %u (%s) does not take fault plans", index, d->name);
        return -ENOTSUP;
    }
    rc = d->type->inject_fault(d->state, plan, err, errlen);
    if (!rc && vm->trace) {
        char text[600];
        snprintf(text, sizeof(text), "disk %u: %s", index, plan);
        trace_recorder_fault(vm->trace, text);
    }
    return rc;
}

static int op_trace_start(void *opaque, const char *path, char *err, size_t errlen)
{
    return vm_trace_start(opaque, path, 1, err, errlen);
}

static int op_trace_stop(void *opaque, char *err, size_t errlen)
{
    /* A trace stopped by command ends with status 0: the run itself goes on. */
    return vm_trace_stop(opaque, 0, err, errlen);
}

static int op_snapshot_take(void *opaque, const char *path, char *err, size_t errlen)
{
    return vm_snapshot_take(opaque, path, err, errlen);
}

static void op_record(void *opaque, const char *request_json, int result)
{
    struct vm *vm = opaque;

    (void)result;
    if (vm->trace)
        trace_recorder_control(vm->trace, request_json);
}

const struct control_vm_ops vm_control_ops = {
    .stop = op_stop,
    .suspend = op_suspend,
    .resume = op_resume,
    .stats = op_stats,
    .disk_resize = op_disk_resize,
    .snapshot_take = op_snapshot_take,
    .fault_inject = op_fault_inject,
    .trace_start = op_trace_start,
    .trace_stop = op_trace_stop,
    .record = op_record,
};

void vm_poll(void *opaque)
{
    struct vm *vm = opaque;

    for (unsigned i = 0; i < vm->ndevices; i++)
        if (vm->devices[i].type->poll)
            vm->devices[i].type->poll(vm->devices[i].state);
    if (!vm->control)
        return;
    control_server_poll(vm->control);
    /* Suspended: the guest does not run; only the socket is served until resume/stop. */
    while (vm->suspended && !vm->stop_requested)
        if (control_server_wait(vm->control, -1) < 0)
            break;
}
