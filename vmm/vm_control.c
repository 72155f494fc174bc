/* The control socket's view of a running VM: what each command does to it. All of this
 * runs on the vCPU thread, from the run loop's poll hook. */
#include "vm.h"
#include "control.h"
#include "control_proto.h"
#include "traces/record.h"
#include "devices/virtio/virtio_balloon.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The INDEX-th device of `kind`, in machine order. */
static struct device *find_kind(struct vm *vm, const char *kind, const char *what,
                                unsigned index, char *err, size_t errlen)
{
    unsigned n = 0;

    for (unsigned i = 0; i < vm->ndevices; i++) {
        if (strcmp(vm->devices[i].kind, kind))
            continue;
        if (n++ == index)
            return &vm->devices[i];
    }
    if (!n)
        snprintf(err, errlen, "this VM has no %s (add one with vmlab run --%s)", what, what);
    else
        snprintf(err, errlen, "index %u: this VM has %u %s device%s", index, n, what,
                 n == 1 ? "" : "s");
    return NULL;
}

int vm_host_input(struct vm *vm, struct device *d, const uint8_t *data, size_t len,
                  char *err, size_t errlen)
{
    int rc = d->type->host_input(d->state, data, len, err, errlen);

    if (!rc && vm->trace)
        trace_recorder_input(vm->trace, (int)(d - vm->devices), data, len);
    return rc;
}

static int input_now(struct vm *vm, struct device *d, const uint8_t *events, unsigned n,
                     char *err, size_t errlen)
{
    return vm_host_input(vm, d, events, (size_t)n * CONTROL_EVENT_SIZE, err, errlen);
}

/* Frames: runs of events ending in SYN_REPORT (a trailing run without one counts too).
 * Fills start[] with each frame's first event; returns the frame count. */
static unsigned input_frames(const uint8_t *events, unsigned n, unsigned *start)
{
    unsigned nf = 0;

    for (unsigned i = 0; i < n; i++) {
        uint16_t type, code;
        if (i == 0 || (memcpy(&type, events + (i - 1) * CONTROL_EVENT_SIZE, 2),
                       memcpy(&code, events + (i - 1) * CONTROL_EVENT_SIZE + 2, 2),
                       type == 0 && code == 0))
            start[nf++] = i;
    }
    start[nf] = n;
    return nf;
}

static int op_input(void *opaque, unsigned index, const uint8_t *events, unsigned n,
                    uint64_t frame_ns, char *err, size_t errlen)
{
    struct vm *vm = opaque;
    struct device *d = find_kind(vm, "virtio-input", "input", index, err, errlen);
    static unsigned start[CONTROL_MAX_EVENTS + 1];
    struct control_request *req;
    int rc = 0;

    if (!d)
        return -ENODEV;
    if (!frame_ns)
        return input_now(vm, d, events, n, err, errlen);
    unsigned nf = input_frames(events, n, start);
    if (nf - 1 > vm_timed_room(vm)) {
        snprintf(err, errlen, "field \"events\": %u frames, but only %u more timed requests "
                 "fit (at most %d pending)", nf, vm_timed_room(vm) + 1, VM_MAX_ARGS);
        return -ENOSPC;
    }
    /* Frames after the first run later on the VM's clock, as timed requests without
     * frame_ns; a failure past this point is out of memory only. */
    req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    const struct clock *c = vm->cpu_ops->clock(vm->cpu);
    uint64_t now = clock_now_ns(c);
    for (unsigned f = 1; !rc && f < nf; f++) {
        req->cmd = CONTROL_INPUT;
        req->index = index;
        req->nevents = start[f + 1] - start[f];
        memcpy(req->events, events + start[f] * CONTROL_EVENT_SIZE,
               (size_t)req->nevents * CONTROL_EVENT_SIZE);
        struct json_object *j = control_request_to_json(req);
        rc = j ? vm_schedule_request(vm, now + f * frame_ns,
                                     json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
                                     err, errlen)
               : -ENOMEM;
        json_object_put(j);
    }
    free(req);
    return rc ? rc : input_now(vm, d, events, start[1], err, errlen);
}

static int op_balloon(void *opaque, uint64_t size, char *err, size_t errlen)
{
    struct device *d = find_kind(opaque, "virtio-balloon", "balloon", 0, err, errlen);
    uint8_t msg[VIRTIO_BALLOON_HOST_TARGET_LEN] = { VIRTIO_BALLOON_HOST_TARGET };

    if (!d)
        return -ENODEV;
    memcpy(msg + 1, &size, 8);
    return vm_host_input(opaque, d, msg, sizeof(msg), err, errlen);
}

static int op_balloon_stats(void *opaque, struct json_object *out, char *err, size_t errlen)
{
    struct device *d = find_kind(opaque, "virtio-balloon", "balloon", 0, err, errlen);
    struct balloon_report r;
    struct json_object *st;

    static const uint8_t refresh = VIRTIO_BALLOON_HOST_STATS;

    if (!d)
        return -ENODEV;
    d->type->balloon_query(d->state, &r);
    /* The guest's answer to this arrives for the next query (crosvm waits for it; here
     * the request runs on the vCPU thread, which cannot wait for the guest). */
    vm_host_input(opaque, d, &refresh, 1, err, errlen);
    st = json_object_new_object();
    if (!st)
        return -ENOMEM;
    json_object_object_add(out, "target", json_object_new_int64((int64_t)r.target_bytes));
    json_object_object_add(out, "actual", json_object_new_int64((int64_t)r.actual_bytes));
    json_object_object_add(out, "stats", st);
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        if (r.stats_valid >> i & 1)
            json_object_object_add(st, virtio_balloon_stat_names[i],
                                   json_object_new_int64((int64_t)r.stats[i]));
    json_object_object_add(out, "stats_updates", json_object_new_int64((int64_t)r.stats_updates));
    json_object_object_add(out, "inflated_pages",
                           json_object_new_int64((int64_t)r.inflated_pages));
    json_object_object_add(out, "deflated_pages",
                           json_object_new_int64((int64_t)r.deflated_pages));
    json_object_object_add(out, "reported_pages",
                           json_object_new_int64((int64_t)r.reported_pages));
    json_object_object_add(out, "bad_pfns", json_object_new_int64((int64_t)r.bad_pfns));
    return 0;
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
    .input = op_input,
    .balloon = op_balloon,
    .balloon_stats = op_balloon_stats,
    .record = op_record,
};

/* Whole events from an --input path= socket. */
static int deliver_input(void *opaque, unsigned device, const uint8_t *data, size_t len)
{
    struct vm *vm = opaque;
    char err[200];
    int rc = vm_host_input(vm, &vm->devices[device], data, len, err, sizeof(err));

    if (rc && !vm->quiet)
        fprintf(stderr, "vmlab: input: %s\n", err);
    return rc;
}

void vm_poll(void *opaque)
{
    struct vm *vm = opaque;

    for (unsigned i = 0; i < vm->ndevices; i++)
        if (vm->devices[i].type->poll)
            vm->devices[i].type->poll(vm->devices[i].state);
    for (unsigned i = 0; i < vm->ninput_src; i++)
        input_source_poll(&vm->input_src[i], deliver_input, vm);
    if (!vm->control)
        return;
    control_server_poll(vm->control);
    /* Suspended: the guest does not run; only the socket is served until resume/stop. */
    while (vm->suspended && !vm->stop_requested)
        if (control_server_wait(vm->control, -1) < 0)
            break;
}
