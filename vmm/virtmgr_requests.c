/* The manager's requests (vmm/VIRTMGR.md): run, open, stop, list, info. Each gets one
 * answer, {"ok":true,...} or {"ok":false,"error":"..."}; a refused request changes nothing. */
#include "virtmgr_internal.h"
#include "sandbox.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void reply_error(struct mgr_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply_error(struct mgr_conn *c, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vmsg_send_error(c->fd, msg);
}

static void reply(struct mgr_conn *c, struct json_object *o)
{
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    vmsg_send(c->fd, o, NULL, 0);
    json_object_put(o);
}

/* Every member of `msg` is one of `allowed` (NULL-terminated). */
static int only_fields(struct mgr_conn *c, struct json_object *msg, const char *cmd,
                       const char *const *allowed)
{
    json_object_object_foreach(msg, key, v) {
        (void)v;
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++)
            known = !strcmp(*a, key);
        if (!known) {
            reply_error(c, "%s: unknown field \"%s\"", cmd, key);
            return -EINVAL;
        }
    }
    return 0;
}

static int get_cid(struct mgr_conn *c, struct json_object *msg, const char *cmd,
                   uint32_t *cid)
{
    struct json_object *v;
    if (!json_object_object_get_ex(msg, "cid", &v)) {
        reply_error(c, "%s: missing field \"cid\"", cmd);
        return -EINVAL;
    }
    errno = 0;
    int64_t n = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || errno || n < 0 || n > UINT32_MAX) {
        reply_error(c, "%s: cid: expected a CID (an integer), got %s", cmd,
                    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        return -EINVAL;
    }
    *cid = (uint32_t)n;
    return 0;
}

static const char *output_of(const struct managed_vm *vm, const struct vmcfg_file *f)
{
    if (vm->cfg.debug == VMCFG_DEBUG_NONE)
        return "hidden (debug none)";
    return f->fd >= 0 ? "client fd" : "none";
}

static struct json_object *vm_info(struct virtmgr *m, const struct managed_vm *vm)
{
    const struct vm_config *c = &vm->cfg;
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "cid", json_object_new_int64(vm->cid));
    json_object_object_add(o, "vsock", json_object_new_string(
        m->o.vsock ? "virtio-vsock device with this CID" : "CID reserved (this vmlab run has "
        "no --vsock)"));
    if (c->name)
        json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "state", json_object_new_string(
        vm->state == MVM_RUNNING ? "running" : "stopping"));
    json_object_object_add(o, "pid", json_object_new_int(vm->pid));
    json_object_object_add(o, c->kernel ? "kernel" : "program",
                           json_object_new_string(c->kernel ? c->kernel : c->program));
    json_object_object_add(o, "cpu", json_object_new_string(c->cpu ? c->cpu : "sim"));
    json_object_object_add(o, "cpus", json_object_new_int((int)c->cpus));
    json_object_object_add(o, "memory_mib", json_object_new_uint64(c->memory_mib ?
                                                                    c->memory_mib : 128));
    json_object_object_add(o, "debug", json_object_new_string(
        c->debug == VMCFG_DEBUG_FULL ? "full" : "none"));
    json_object_object_add(o, "console", json_object_new_string(output_of(vm, &c->console)));
    json_object_object_add(o, "log", json_object_new_string(output_of(vm, &c->log)));
    char sandbox[200];
    if (!c->sandbox)
        snprintf(sandbox, sizeof(sandbox), "off (--no-sandbox)");
    else
        snprintf(sandbox, sizeof(sandbox), "seccomp allow-lists per thread role (vmm %u, "
                 "kvm helpers %u system calls), no_new_privs, only its fds; %s%s",
                 sandbox_allowed_count(SANDBOX_VMM), sandbox_allowed_count(SANDBOX_HELPER),
                 vm->ns_errno ? "no namespaces: the kernel refused: " :
                                "own user and mount namespaces",
                 vm->ns_errno ? strerror(vm->ns_errno) : "");
    json_object_object_add(o, "sandbox", json_object_new_string(sandbox));
    json_object_object_add(o, "detached", json_object_new_boolean(vm->detached));
    json_object_object_add(o, "holders", json_object_new_int((int)vm->nholders));
    json_object_object_add(o, "uptime_ms",
                           json_object_new_int64(virtmgr_now_ms() - vm->started_ms));
    struct json_object *disks = json_object_new_array();
    for (unsigned i = 0; i < c->ndisks; i++) {
        struct json_object *d = json_object_new_object();
        json_object_object_add(d, "kind", json_object_new_string(
            c->disks[i].nparts ? "composite" : "image"));
        json_object_object_add(d, "writable", json_object_new_boolean(c->disks[i].writable));
        if (c->disks[i].nparts) {
            struct json_object *p = json_object_new_array();
            for (unsigned k = 0; k < c->disks[i].nparts; k++)
                json_object_array_add(p, json_object_new_string(c->disks[i].parts[k].label));
            json_object_object_add(d, "partitions", p);
        }
        json_object_array_add(disks, d);
    }
    json_object_object_add(o, "disks", disks);
    return o;
}

static void close_fds(int *fds, unsigned nfds)
{
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
}

static int absolute(struct mgr_conn *c, const char *key, const char *path)
{
    if (path && path[0] != '/') {
        reply_error(c, "run: config: %s: '%s' is not an absolute path (the manager does not "
                    "share the client's working directory)", key, path);
        return 0;
    }
    return 1;
}

static void do_run(struct virtmgr *m, struct mgr_conn *c, struct json_object *msg, int *fds,
                   unsigned nfds)
{
    static const char *const fields[] = { "cmd", "config", "detach", NULL };
    struct json_object *cfg, *det;
    struct managed_vm *vm = NULL;
    char err[512] = "";
    int detach = 0, r;

    if (only_fields(c, msg, "run", fields))
        goto refuse;
    if (json_object_object_get_ex(msg, "detach", &det)) {
        if (!json_object_is_type(det, json_type_boolean)) {
            reply_error(c, "run: detach: expected true or false, got %s",
                        json_object_to_json_string_ext(det, JSON_C_TO_STRING_PLAIN));
            goto refuse;
        }
        detach = json_object_get_boolean(det);
    }
    if (!json_object_object_get_ex(msg, "config", &cfg)) {
        reply_error(c, "run: missing field \"config\"");
        goto refuse;
    }
    if (m->quitting) {
        reply_error(c, "run: the manager is exiting");
        goto refuse;
    }
    if (m->nvms == m->capvms) {
        unsigned cap = m->capvms ? 2 * m->capvms : 16;
        struct managed_vm **v = realloc(m->vms, cap * sizeof(*v));
        if (!v) {
            reply_error(c, "run: out of memory");
            goto refuse;
        }
        m->vms = v;
        m->capvms = cap;
    }
    vm = calloc(1, sizeof(*vm));
    if (!vm) {
        reply_error(c, "run: out of memory");
        goto refuse;
    }
    vmcfg_init(&vm->cfg);
    memcpy(vm->fds, fds, nfds * sizeof(*fds));
    vm->nfds = nfds;
    nfds = 0;                   /* the VM owns them now */
    if (vmcfg_parse(cfg, VMCFG_WIRE, &vm->cfg, err, sizeof(err))) {
        reply_error(c, "run: %s", err);
        goto refuse;
    }
    if (!absolute(c, "kernel", vm->cfg.kernel) || !absolute(c, "program", vm->cfg.program) ||
        !absolute(c, "initrd", vm->cfg.initrd))
        goto refuse;
    if (mvm_check_fds(vm, err, sizeof(err))) {
        reply_error(c, "run: %s", err);
        goto refuse;
    }
    if (cid_alloc_take(&m->cids, &vm->cid, err, sizeof(err))) {
        vm->cid = 0;
        reply_error(c, "run: %s", err);
        goto refuse;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/vm-%u", m->o.state_dir, vm->cid);
    vm->dir = strdup(path);
    snprintf(path, sizeof(path), "%s/vm-%u/control.sock", m->o.state_dir, vm->cid);
    vm->socket = strdup(path);
    if (!vm->dir || !vm->socket) {
        reply_error(c, "run: out of memory");
        goto refuse;
    }
    if (mkdir(vm->dir, 0700) < 0) {
        r = errno;
        free(vm->dir);
        vm->dir = NULL;     /* not ours: never remove it */
        reply_error(c, "run: %s/vm-%u: %s", m->o.state_dir, vm->cid, strerror(r));
        goto refuse;
    }
    if (mvm_build_composites(vm, err, sizeof(err)) || mvm_spawn(vm, m->o.exe, m->o.vsock, err, sizeof(err))) {
        reply_error(c, "run: %s", err);
        goto refuse;
    }
    vm->started_ms = virtmgr_now_ms();
    vm->detached = detach;
    if (!detach && mvm_add_holder(vm, c->id)) {
        vm->detached = 1;       /* cannot record the holder: keep it alive until stopped */
        reply_error(c, "run: out of memory");
        m->vms[m->nvms++] = vm;
        return;
    }
    m->vms[m->nvms++] = vm;
    virtmgr_note(m, "VM %u: started, pid %d%s", vm->cid, (int)vm->pid,
                 detach ? ", detached" : "");
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "cid", json_object_new_int64(vm->cid));
    reply(c, o);
    return;
refuse:
    close_fds(fds, nfds);
    if (vm && vm->cid)
        cid_alloc_release(&m->cids, vm->cid);
    mvm_free(vm);
}

/* The VM a {"cmd":CMD,"cid":N} request names, or NULL after answering why not. */
static struct managed_vm *vm_of_request(struct virtmgr *m, struct mgr_conn *c,
                                        struct json_object *msg, const char *cmd)
{
    static const char *const fields[] = { "cmd", "cid", NULL };
    uint32_t cid;

    if (only_fields(c, msg, cmd, fields) || get_cid(c, msg, cmd, &cid))
        return NULL;
    struct managed_vm *vm = virtmgr_find(m, cid);
    if (!vm)
        reply_error(c, "%s: cid %u: no such VM", cmd, cid);
    return vm;
}

static void reply_vm(struct virtmgr *m, struct mgr_conn *c, struct managed_vm *vm)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "vm", vm_info(m, vm));
    reply(c, o);
}

static void do_open(struct virtmgr *m, struct mgr_conn *c, struct json_object *msg)
{
    struct managed_vm *vm = vm_of_request(m, c, msg, "open");

    if (!vm)
        return;
    if (vm->state != MVM_RUNNING) {
        reply_error(c, "open: cid %u: the VM is stopping", vm->cid);
        return;
    }
    if (mvm_add_holder(vm, c->id)) {
        reply_error(c, "open: out of memory");
        return;
    }
    reply_vm(m, c, vm);
}

static void do_stop(struct virtmgr *m, struct mgr_conn *c, struct json_object *msg)
{
    struct managed_vm *vm = vm_of_request(m, c, msg, "stop");

    if (!vm)
        return;
    if (!vm->detached && vm->state == MVM_RUNNING) {
        reply_error(c, "stop: cid %u: not started with --detach; it ends when its %u "
                    "client%s let go", vm->cid, vm->nholders, vm->nholders == 1 ? "" : "s");
        return;
    }
    vm->detached = 0;
    if (mvm_refs(vm) == 0)
        virtmgr_begin_stop(m, vm, "vm stop dropped the manager's reference");
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "stopping", json_object_new_boolean(vm->state == MVM_STOPPING));
    json_object_object_add(o, "holders", json_object_new_int((int)vm->nholders));
    reply(c, o);
}

static int cmp_cid(const void *a, const void *b)
{
    uint32_t x = (*(struct managed_vm *const *)a)->cid, y = (*(struct managed_vm *const *)b)->cid;
    return x < y ? -1 : x > y;
}

static void do_list(struct virtmgr *m, struct mgr_conn *c, struct json_object *msg)
{
    static const char *const fields[] = { "cmd", NULL };

    if (only_fields(c, msg, "list", fields))
        return;
    if (m->nvms)
        qsort(m->vms, m->nvms, sizeof(*m->vms), cmp_cid);
    struct json_object *a = json_object_new_array();
    for (unsigned i = 0; i < m->nvms; i++)
        json_object_array_add(a, vm_info(m, m->vms[i]));
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "vms", a);
    reply(c, o);
}

static void do_info(struct virtmgr *m, struct mgr_conn *c, struct json_object *msg)
{
    struct managed_vm *vm = vm_of_request(m, c, msg, "info");

    if (vm)
        reply_vm(m, c, vm);
}

void virtmgr_handle(struct virtmgr *m, struct mgr_conn *c, struct json_object *msg,
                    int *fds, unsigned nfds)
{
    struct json_object *cmdv;
    const char *cmd = NULL;

    if (json_object_object_get_ex(msg, "cmd", &cmdv) &&
        json_object_is_type(cmdv, json_type_string))
        cmd = json_object_get_string(cmdv);
    if (!cmd) {
        reply_error(c, "cmd: missing, or not a string");
    } else if (!strcmp(cmd, "run")) {
        do_run(m, c, msg, fds, nfds);
        return;
    } else if (nfds) {
        reply_error(c, "%.40s: takes no file descriptors, got %u", cmd, nfds);
    } else if (!strcmp(cmd, "open")) {
        do_open(m, c, msg);
    } else if (!strcmp(cmd, "stop")) {
        do_stop(m, c, msg);
    } else if (!strcmp(cmd, "list")) {
        do_list(m, c, msg);
    } else if (!strcmp(cmd, "info")) {
        do_info(m, c, msg);
    } else {
        reply_error(c, "cmd: unknown command \"%.40s\" (known: run, open, stop, list, info)",
                    cmd);
    }
    close_fds(fds, nfds);
}
