/* The manager's event loop: the listening socket, clients, child exits (signalfd), and
 * the stop timers. Requests are answered in vmm/virtmgr_requests.c. */
#include "virtmgr.h"
#include "virtmgr_internal.h"
#include "unix_listen.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t virtmgr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void virtmgr_note(struct virtmgr *m, const char *fmt, ...)
{
    va_list ap;
    if (m->o.quiet)
        return;
    va_start(ap, fmt);
    fputs("vmlab virtmgr: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Folders of VMs a previous manager ran: their processes died with it (PDEATHSIG), so
 * what is left are files; nothing in them is still running. */
static void remove_stale_vm_dirs(struct virtmgr *m)
{
    DIR *d = opendir(m->o.state_dir);
    struct dirent *e;
    unsigned n = 0;

    if (!d)
        return;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "vm-", 3) != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", m->o.state_dir, e->d_name);
        struct managed_vm *vm = calloc(1, sizeof(*vm));
        if (!vm)
            break;
        vmcfg_init(&vm->cfg);
        vm->dir = strdup(path);
        mvm_free(vm);       /* removes the folder's files and the folder */
        n++;
    }
    closedir(d);
    if (n)
        virtmgr_note(m, "removed %u folder%s left by a previous manager", n, n == 1 ? "" : "s");
}

int virtmgr_open(struct virtmgr **out, const struct virtmgr_options *o, char *err,
                 size_t errlen)
{
    struct virtmgr *m = calloc(1, sizeof(*m));
    int r;

    *out = NULL;
    if (!m)
        return -ENOMEM;
    m->o = *o;
    m->lfd = m->sfd = -1;
    for (unsigned i = 0; i < VIRTMGR_MAX_CLIENTS; i++)
        m->conns[i].fd = -1;
    /* <state dir>/vm-65535/control.sock must fit a socket address. */
    if (strlen(o->state_dir) + sizeof("/vm-65535/control.sock") >
        sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errlen, "--state-dir '%s': too long for the VMs' socket paths (at most "
                 "%zu bytes)", o->state_dir, sizeof(((struct sockaddr_un *)0)->sun_path) -
                 sizeof("/vm-65535/control.sock"));
        free(m);
        return -ENAMETOOLONG;
    }
    if (mkdir(o->state_dir, 0700) < 0 && errno != EEXIST) {
        r = -errno;
        snprintf(err, errlen, "--state-dir '%s': %s", o->state_dir, strerror(-r));
        free(m);
        return r;
    }
    r = cid_alloc_init(&m->cids, o->state_dir, o->cid_first, o->cid_last, err, errlen);
    if (r) {
        free(m);
        return r;
    }
    m->lfd = unix_listen(o->socket, SOCK_SEQPACKET, "manager socket", "a running manager",
                         &m->lst, err, errlen);
    if (m->lfd < 0) {
        r = m->lfd;
        cid_alloc_free(&m->cids);
        free(m);
        return r;
    }
    remove_stale_vm_dirs(m);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (m->sfd < 0) {
        r = -errno;
        snprintf(err, errlen, "signalfd: %s", strerror(-r));
        virtmgr_close(m);
        return r;
    }
    *out = m;
    return 0;
}

struct mgr_conn *virtmgr_conn(struct virtmgr *m, uint64_t id)
{
    for (unsigned i = 0; i < VIRTMGR_MAX_CLIENTS; i++)
        if (m->conns[i].fd >= 0 && m->conns[i].id == id)
            return &m->conns[i];
    return NULL;
}

struct managed_vm *virtmgr_find(struct virtmgr *m, uint32_t cid)
{
    for (unsigned i = 0; i < m->nvms; i++)
        if (m->vms[i]->cid == cid)
            return m->vms[i];
    return NULL;
}

/* Graceful stop through the VM's control socket; fails quietly while the VM has not
 * created it yet (the next tick tries again, and the deadline still holds). */
static void send_graceful_stop(struct managed_vm *vm)
{
    static const char req[] = "{\"cmd\":\"stop\"}\n";
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vm->socket);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1)
        vm->stop_sent = 1;
    close(fd);
}

void virtmgr_begin_stop(struct virtmgr *m, struct managed_vm *vm, const char *why)
{
    if (vm->state != MVM_RUNNING)
        return;
    vm->state = MVM_STOPPING;
    vm->stop_deadline_ms = virtmgr_now_ms() + m->o.stop_timeout_ms;
    virtmgr_note(m, "VM %u: stopping (%s)", vm->cid, why);
    send_graceful_stop(vm);
}

static void drive_stops(struct virtmgr *m)
{
    int64_t now = virtmgr_now_ms();

    for (unsigned i = 0; i < m->nvms; i++) {
        struct managed_vm *vm = m->vms[i];
        if (vm->state != MVM_STOPPING || vm->killed)
            continue;
        if (!vm->stop_sent)
            send_graceful_stop(vm);
        if (now >= vm->stop_deadline_ms) {
            virtmgr_note(m, "VM %u: no exit %d ms after the stop request, SIGKILL", vm->cid,
                         m->o.stop_timeout_ms);
            kill(vm->pid, SIGKILL);
            vm->killed = 1;
        }
    }
}

/* The child is gone: tell every holder why, free its CID and everything it held. */
static void vm_ended(struct virtmgr *m, unsigned idx, int status)
{
    struct managed_vm *vm = m->vms[idx];
    const char *reason;
    char detail[160];

    mvm_reason(status, &reason, detail, sizeof(detail));
    struct json_object *ev = json_object_new_object();
    json_object_object_add(ev, "event", json_object_new_string("died"));
    json_object_object_add(ev, "cid", json_object_new_int64(vm->cid));
    json_object_object_add(ev, "reason", json_object_new_string(reason));
    json_object_object_add(ev, "detail", json_object_new_string(detail));
    if (WIFEXITED(status))
        json_object_object_add(ev, "status", json_object_new_int(WEXITSTATUS(status)));
    else
        json_object_object_add(ev, "signal", json_object_new_int(WTERMSIG(status)));
    json_object_object_add(ev, "stopped_by_manager",
                           json_object_new_boolean(vm->state == MVM_STOPPING));
    for (unsigned i = 0; i < vm->nholders; i++) {
        struct mgr_conn *c = virtmgr_conn(m, vm->holders[i]);
        if (c)
            vmsg_send(c->fd, ev, NULL, 0);
    }
    json_object_put(ev);
    virtmgr_note(m, "VM %u ended: %s (%s)", vm->cid, reason, detail);
    cid_alloc_release(&m->cids, vm->cid);
    m->vms[idx] = m->vms[--m->nvms];
    mvm_free(vm);
}

static void reap(struct virtmgr *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (unsigned i = 0; i < m->nvms; i++) {
            if (m->vms[i]->pid == pid) {
                vm_ended(m, i, status);
                break;
            }
        }
    }
}

static void stop_all(struct virtmgr *m, const char *why)
{
    for (unsigned i = 0; i < m->nvms; i++) {
        m->vms[i]->detached = 0;
        virtmgr_begin_stop(m, m->vms[i], why);
    }
}

static void read_signals(struct virtmgr *m)
{
    struct signalfd_siginfo si;

    while (read(m->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            continue;       /* reaped below, all at once */
        if (!m->quitting)
            virtmgr_note(m, "SIG%s: stopping %u VM%s and exiting", sigabbrev_np((int)si.ssi_signo),
                         m->nvms, m->nvms == 1 ? "" : "s");
        m->quitting = 1;
        stop_all(m, "the manager is exiting");
    }
    reap(m);
}

/* A client is gone (closed, crashed, killed): its references go with it. */
void virtmgr_drop_conn(struct virtmgr *m, struct mgr_conn *c)
{
    uint64_t id = c->id;

    close(c->fd);
    c->fd = -1;
    m->nconns--;
    for (unsigned i = 0; i < m->nvms; i++) {
        struct managed_vm *vm = m->vms[i];
        if (mvm_drop_holder(vm, id) && mvm_refs(vm) == 0)
            virtmgr_begin_stop(m, vm, "its last reference was dropped");
    }
}

/* Closes a refused connection after its answer. A request already queued would make the
 * close reset the connection, and the client would lose the answer: read it first (its
 * fds are closed, it is not served). */
static void refuse_close(int fd)
{
    for (int k = 0; k < 4; k++) {
        char sink[256];
        struct msghdr mh = { 0 };
        struct iovec iov = { sink, sizeof(sink) };
        union { char b[CMSG_SPACE(sizeof(int) * VIRTMGR_MAX_FDS)]; struct cmsghdr a; } u;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = u.b;
        mh.msg_controllen = sizeof(u.b);
        if (recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
            break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                    int rfd;
                    memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    close(rfd);
                }
    }
    close(fd);
}

static void accept_conns(struct virtmgr *m)
{
    for (;;) {
        int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        long uid;
        if (!unix_peer_same_uid(fd, &uid)) {
            char msg[128];
            snprintf(msg, sizeof(msg), "peer uid %ld differs from the manager's uid %ld", uid,
                     (long)geteuid());
            vmsg_send_error(fd, msg);
            refuse_close(fd);
            continue;
        }
        struct mgr_conn *c = NULL;
        for (unsigned i = 0; i < VIRTMGR_MAX_CLIENTS && !c; i++)
            if (m->conns[i].fd < 0)
                c = &m->conns[i];
        if (!c) {
            char msg[96];
            snprintf(msg, sizeof(msg), "too many clients (at most %d at once)",
                     VIRTMGR_MAX_CLIENTS);
            vmsg_send_error(fd, msg);
            refuse_close(fd);
            continue;
        }
        c->fd = fd;
        c->id = ++m->next_conn_id;
        m->nconns++;
    }
}

static void serve_conn(struct virtmgr *m, struct mgr_conn *c)
{
    struct json_object *msg;
    int fds[VIRTMGR_MAX_FDS];
    unsigned nfds;
    char err[512] = "";
    int r = vmsg_recv(c->fd, &msg, fds, &nfds, err, sizeof(err));

    if (r == 0 || r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE) {
        virtmgr_drop_conn(m, c);
        return;
    }
    if (r == -EAGAIN)
        return;
    if (r < 0) {
        /* Datagram framing: a bad message never desynchronises the next one. */
        if (vmsg_send_error(c->fd, err) < 0)
            virtmgr_drop_conn(m, c);
        return;
    }
    virtmgr_handle(m, c, msg, fds, nfds);
    json_object_put(msg);
}

int virtmgr_run(struct virtmgr *m)
{
    static struct pollfd pfds[VIRTMGR_MAX_CLIENTS + 2];
    static int slot[VIRTMGR_MAX_CLIENTS + 2];

    virtmgr_note(m, "listening on %s (state in %s)", m->o.socket, m->o.state_dir);
    for (;;) {
        if (m->quitting && m->nvms == 0)
            return 0;
        unsigned n = 0;
        pfds[n++] = (struct pollfd){ .fd = m->sfd, .events = POLLIN };
        if (!m->quitting)
            pfds[n++] = (struct pollfd){ .fd = m->lfd, .events = POLLIN };
        for (unsigned i = 0; i < VIRTMGR_MAX_CLIENTS; i++) {
            if (m->conns[i].fd < 0)
                continue;
            slot[n] = (int)i;
            pfds[n++] = (struct pollfd){ .fd = m->conns[i].fd, .events = POLLIN };
        }
        int stopping = 0;
        for (unsigned i = 0; i < m->nvms; i++)
            stopping |= m->vms[i]->state == MVM_STOPPING && !m->vms[i]->killed;
        int rc = poll(pfds, n, stopping ? 50 : -1);
        if (rc < 0 && errno != EINTR)
            return -errno;
        for (unsigned i = 0; rc > 0 && i < n; i++) {
            if (!pfds[i].revents)
                continue;
            if (pfds[i].fd == m->sfd)
                read_signals(m);
            else if (pfds[i].fd == m->lfd)
                accept_conns(m);
            else if (m->conns[slot[i]].fd == pfds[i].fd)
                serve_conn(m, &m->conns[slot[i]]);
        }
        drive_stops(m);
    }
}

void virtmgr_close(struct virtmgr *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < VIRTMGR_MAX_CLIENTS; i++)
        if (m->conns[i].fd >= 0)
            close(m->conns[i].fd);
    for (unsigned i = 0; i < m->nvms; i++) {
        /* Only after a failure of the loop: never leave a VM without its manager. */
        kill(m->vms[i]->pid, SIGKILL);
        waitpid(m->vms[i]->pid, NULL, 0);
        mvm_free(m->vms[i]);
    }
    free(m->vms);
    if (m->lfd >= 0) {
        close(m->lfd);
        unix_listen_unlink(m->o.socket, &m->lst);
    }
    if (m->sfd >= 0)
        close(m->sfd);
    cid_alloc_free(&m->cids);
    free(m);
}
