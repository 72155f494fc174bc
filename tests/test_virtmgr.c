/* The VM manager's parts that do not need a running manager: the CID allocator and its
 * persisted state, the VM config parser, the message transport (SCM_RIGHTS, limits),
 * the checks on fds a client passes as disks, composites from fds, exit reasons, and
 * create-partition. The daemon end to end: tests/cli/virtmgr*.sh. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/disk/disk.h"
#include "tests/check_run.h"
#include "tests/scratch.h"
#include "vmm/virtmgr_cid.h"
#include "vmm/virtmgr_config.h"
#include "vmm/virtmgr_msg.h"
#include "vmm/virtmgr_vm.h"
#include "vmm/vm_partition.h"

/* ---- CIDs ------------------------------------------------------------------------ */

static uint32_t take(struct cid_alloc *a)
{
    uint32_t cid = 0;
    char err[256];
    ck_assert_int_eq(cid_alloc_take(a, &cid, err, sizeof(err)), 0);
    return cid;
}

START_TEST(cid_sequence_wraps_and_skips_live)
{
    struct cid_alloc a;
    char err[256];

    ck_assert_int_eq(cid_alloc_init(&a, NULL, 10, 13, err, sizeof(err)), 0);
    ck_assert_uint_eq(take(&a), 10);
    ck_assert_uint_eq(take(&a), 11);
    cid_alloc_release(&a, 10);
    /* Not eagerly recycled: 10 is free again, but the search goes on after 11. */
    ck_assert_uint_eq(take(&a), 12);
    ck_assert_uint_eq(take(&a), 13);
    /* Wraps: 10 is free, 11 still live. */
    ck_assert_uint_eq(take(&a), 10);
    uint32_t cid = 0;
    ck_assert_int_eq(cid_alloc_take(&a, &cid, err, sizeof(err)), -EBUSY);
    ck_assert_ptr_nonnull(strstr(err, "no free CID: all 4 CIDs in 10..13"));
    ck_assert_uint_eq(cid_alloc_live(&a), 4);
    cid_alloc_release(&a, 12);
    ck_assert_uint_eq(take(&a), 12);
    cid_alloc_free(&a);
}
END_TEST

START_TEST(cid_default_range_starts_at_2048)
{
    struct cid_alloc a;
    char err[256];

    ck_assert_int_eq(cid_alloc_init(&a, NULL, VIRTMGR_CID_FIRST, VIRTMGR_CID_LAST, err,
                                    sizeof(err)), 0);
    ck_assert_uint_eq(take(&a), 2048);
    ck_assert_uint_eq(take(&a), 2049);
    cid_alloc_free(&a);
}
END_TEST

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

START_TEST(cid_persisted_across_restart)
{
    struct cid_alloc a;
    char err[256], buf[32];

    ck_assert_int_eq(cid_alloc_init(&a, scratch_dir, 2048, 2051, err, sizeof(err)), 0);
    ck_assert_uint_eq(take(&a), 2048);
    ck_assert_uint_eq(take(&a), 2049);
    read_file(scratch_path("last-cid"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "2049\n");
    ck_assert_int_eq(access(scratch_path("last-cid.tmp"), F_OK), -1);
    cid_alloc_free(&a);
    /* A restarted manager does not hand out the CID it just gave. */
    ck_assert_int_eq(cid_alloc_init(&a, scratch_dir, 2048, 2051, err, sizeof(err)), 0);
    ck_assert_uint_eq(take(&a), 2050);
    ck_assert_uint_eq(take(&a), 2051);
    ck_assert_uint_eq(take(&a), 2048);      /* wraps */
    cid_alloc_free(&a);
}
END_TEST

START_TEST(cid_corrupt_state_refused)
{
    static const char *bad[] = { "", "abc\n", "99\n", "70000\n", "2050x\n", "-2050\n" };
    struct cid_alloc a;
    char err[256];

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *f = fopen(scratch_path("last-cid"), "w");
        fputs(bad[i], f);
        fclose(f);
        ck_assert_int_eq(cid_alloc_init(&a, scratch_dir, 2048, 65535, err, sizeof(err)),
                         -EINVAL);
        ck_assert_msg(strstr(err, "is not a CID in 2048..65535"), "%s: %s", bad[i], err);
        ck_assert_ptr_nonnull(strstr(err, "last-cid"));
    }
}
END_TEST

/* ---- config ---------------------------------------------------------------------- */

static int parse(const char *json, enum vmcfg_form form, struct vm_config *c, char *err,
                 size_t len)
{
    struct json_object *o = json_tokener_parse(json);
    ck_assert_msg(o != NULL, "test JSON does not parse: %s", json);
    vmcfg_init(c);
    int r = vmcfg_parse(o, form, c, err, len);
    json_object_put(o);
    return r;
}

START_TEST(config_full_file_parses_and_round_trips)
{
    static const char *json =
        "{\"name\":\"n\",\"kernel\":\"/k\",\"initrd\":\"/i\",\"params\":\"console=hvc0\","
        "\"memory_mib\":256,\"cpus\":1,\"cpu\":\"kvm\",\"debug\":\"none\",\"devices\":[\"rng\"],"
        "\"disks\":[{\"image\":\"a.img\",\"writable\":true},{\"partitions\":[{\"label\":\"x\","
        "\"path\":\"x.img\",\"writable\":false},{\"label\":\"y\",\"path\":\"y.img\"}]}]}";
    struct vm_config c, c2;
    char err[512] = "";

    ck_assert_int_eq(parse(json, VMCFG_FILE, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(c.kernel, "/k");
    ck_assert_str_eq(c.params, "console=hvc0");
    ck_assert_uint_eq(c.memory_mib, 256);
    ck_assert_int_eq(c.debug, VMCFG_DEBUG_NONE);
    ck_assert_int_eq(c.rng, 1);
    ck_assert_uint_eq(c.ndisks, 2);
    ck_assert_str_eq(c.disks[0].image.path, "a.img");
    ck_assert_int_eq(c.disks[0].writable, 1);
    ck_assert_uint_eq(c.disks[1].nparts, 2);
    ck_assert_str_eq(c.disks[1].parts[1].label, "y");
    /* What the client writes is what it read. */
    struct json_object *o = vmcfg_to_json(&c, VMCFG_FILE);
    vmcfg_init(&c2);
    ck_assert_int_eq(vmcfg_parse(o, VMCFG_FILE, &c2, err, sizeof(err)), 0);
    struct json_object *o2 = vmcfg_to_json(&c2, VMCFG_FILE);
    ck_assert_str_eq(json_object_to_json_string(o), json_object_to_json_string(o2));
    json_object_put(o);
    json_object_put(o2);
    vmcfg_free(&c);
    vmcfg_free(&c2);
}
END_TEST

static const struct {
    const char *json;
    const char *want;
} bad_configs[] = {
    { "{\"program\":\"/p\",\"memroy_mib\":64}", "config: memroy_mib: unknown key" },
    { "{\"program\":\"/p\",\"memory_mib\":\"64\"}", "config: memory_mib: expected an integer" },
    { "{\"program\":\"/p\",\"memory_mib\":1}", "config: memory_mib: expected an integer in 2.." },
    { "{\"program\":\"/p\",\"memory_mib\":64.5}", "config: memory_mib: expected an integer" },
    { "{\"program\":\"/p\",\"cpus\":2}", "config: cpus: expected an integer in 1..1" },
    { "{\"program\":\"/p\",\"cpu\":\"arm\"}", "config: cpu: 'arm' is not one of sim, kvm" },
    { "{\"program\":\"/p\",\"debug\":\"some\"}", "config: debug: 'some' is not one of full" },
    { "{\"program\":\"/p\",\"devices\":[\"gpu\"]}", "config: devices[0]: 'gpu'" },
    { "{\"program\":\"/p\",\"args\":[\"a\",3]}", "config: args[1]: expected a string" },
    { "{\"program\":\"/p\",\"disks\":{}}", "config: disks: expected an array" },
    { "{\"program\":\"/p\",\"disks\":[{\"image\":\"a\",\"wrtable\":true}]}",
      "config: disks[0].wrtable: unknown key" },
    { "{\"program\":\"/p\",\"disks\":[{\"partitions\":[{\"label\":\"a\",\"path\":\"p\"},"
      "{\"label\":7,\"path\":\"q\"}]}]}",
      "config: disks[0].partitions[1].label: expected a string, got int 7" },
    { "{\"program\":\"/p\",\"disks\":[{\"partitions\":[{\"label\":\"a\"}]}]}",
      "config: disks[0].partitions[0]: missing \"path\"" },
    { "{\"program\":\"/p\",\"disks\":[{\"image\":\"a\",\"partitions\":[{\"label\":\"a\","
      "\"path\":\"p\"}]}]}", "config: disks[0]: needs exactly one of \"image\"" },
    { "{\"program\":\"/p\",\"disks\":[{\"image_fd\":0}]}", "config: disks[0].image_fd: unknown key" },
    { "{\"program\":\"/p\",\"console_fd\":1}", "config: console_fd: unknown key" },
    { "{\"program\":\"/p\",\"kernel\":\"/k\"}", "needs exactly one of \"kernel\" and \"program\"" },
    { "{\"memory_mib\":64}", "needs exactly one of \"kernel\" and \"program\"" },
    { "{\"kernel\":\"/k\",\"args\":[\"x\"]}", "config: args: only a \"program\"" },
    { "{\"program\":\"/p\",\"initrd\":\"/i\"}", "config: initrd: only a \"kernel\"" },
    { "{\"program\":\"\"}", "config: program: expected a non-empty string" },
    { "[1]", "config: (top level): expected an object" },
};

START_TEST(config_bad_file_names_the_key)
{
    struct vm_config c;
    char err[512] = "";

    ck_assert_int_eq(parse(bad_configs[_i].json, VMCFG_FILE, &c, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, bad_configs[_i].want), "%s: got '%s', want '%s'",
                  bad_configs[_i].json, err, bad_configs[_i].want);
    ck_assert_ptr_null(strchr(err, '\n'));
    vmcfg_free(&c);
}
END_TEST

START_TEST(config_wire_form_takes_fds_not_paths)
{
    struct vm_config c;
    char err[512] = "";

    ck_assert_int_eq(parse("{\"program\":\"/p\",\"console_fd\":1,\"log_fd\":2,\"disks\":"
                           "[{\"image_fd\":0},{\"partitions\":[{\"label\":\"a\",\"fd\":3}]}]}",
                           VMCFG_WIRE, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.console.fd, 1);
    ck_assert_int_eq(c.disks[1].parts[0].file.fd, 3);
    vmcfg_free(&c);
    ck_assert_int_eq(parse("{\"program\":\"/p\",\"disks\":[{\"image\":\"/etc/passwd\"}]}",
                           VMCFG_WIRE, &c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "disks[0].image: unknown key"));
    vmcfg_free(&c);
    ck_assert_int_eq(parse("{\"program\":\"/p\",\"disks\":[{\"image_fd\":16}]}",
                           VMCFG_WIRE, &c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "disks[0].image_fd: expected an integer in 0..15"));
    vmcfg_free(&c);
}
END_TEST

START_TEST(config_load_names_the_file)
{
    struct vm_config c;
    char err[512] = "";
    FILE *f = fopen(scratch_path("vm.json"), "w");
    fputs("{\"program\":\"/p\",\"disks\":[{\"image\":true}]}", f);
    fclose(f);
    vmcfg_init(&c);
    ck_assert_int_eq(vmcfg_load(scratch_path("vm.json"), &c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "vm.json: disks[0].image: expected a string"));
    vmcfg_free(&c);
    f = fopen(scratch_path("broken.json"), "w");
    fputs("{\"program\":", f);
    fclose(f);
    ck_assert_int_eq(vmcfg_load(scratch_path("broken.json"), &c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "broken.json: not a readable JSON file"));
    vmcfg_free(&c);
}
END_TEST

/* ---- messages -------------------------------------------------------------------- */

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

START_TEST(msg_carries_fds)
{
    int sv[2], fds[VIRTMGR_MAX_FDS];
    unsigned nfds;
    struct json_object *m;
    char err[256];

    pair(sv);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct json_object *o = json_tokener_parse("{\"cmd\":\"x\"}");
    ck_assert_int_eq(vmsg_send(sv[0], o, p, 2), 0);
    json_object_put(o);
    ck_assert_int_eq(vmsg_recv(sv[1], &m, fds, &nfds, err, sizeof(err)), 1);
    ck_assert_uint_eq(nfds, 2);
    ck_assert_int_eq(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(write(fds[1], "hi", 2), 2);      /* the received write end */
    char buf[4];
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 2);
    json_object_put(m);
    for (int i = 0; i < 2; i++) {
        close(fds[i]);
        close(p[i]);
    }
    close(sv[0]);
    ck_assert_int_eq(vmsg_recv(sv[1], &m, fds, &nfds, err, sizeof(err)), 0);
    close(sv[1]);
}
END_TEST

static int open_fds(void)
{
    int n = 0;
    char path[64];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n += access(path, F_OK) == 0;
    }
    return n;
}

START_TEST(msg_bad_messages_refused_fds_closed)
{
    static char big[VIRTMGR_MAX_MESSAGE + 100];
    int sv[2], fds[VIRTMGR_MAX_FDS];
    unsigned nfds;
    struct json_object *m;
    char err[256];
    int before;

    pair(sv);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    before = open_fds();
    /* Oversized, with an fd: refused, and the fd does not stay open in the receiver. */
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    struct iovec iov = { big, sizeof(big) };
    union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                         .msg_controllen = sizeof(u.b) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    ck_assert_int_eq(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof(big));
    ck_assert_int_eq(vmsg_recv(sv[1], &m, fds, &nfds, err, sizeof(err)), -EMSGSIZE);
    ck_assert_ptr_nonnull(strstr(err, "exceeds the limit of 65536 bytes"));
    ck_assert_int_eq(open_fds(), before);
    /* Not JSON, not an object, trailing data. */
    static const char *bad[] = { "{\"cmd\":", "[1,2]", "{} {}", "\x01" };
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_int_eq(send(sv[0], bad[i], strlen(bad[i]), 0), (ssize_t)strlen(bad[i]));
        ck_assert_int_eq(vmsg_recv(sv[1], &m, fds, &nfds, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "message is not a JSON object"), "%s: %s", bad[i], err);
    }
    /* The next good message still arrives whole: datagrams keep the framing. */
    ck_assert_int_eq(send(sv[0], "{\"cmd\":\"list\"}", 14, 0), 14);
    ck_assert_int_eq(vmsg_recv(sv[1], &m, fds, &nfds, err, sizeof(err)), 1);
    json_object_put(m);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* ---- fds as disks, composites ----------------------------------------------------- */

static struct managed_vm *vm_with(const char *json, int *fds, unsigned nfds)
{
    struct managed_vm *vm = calloc(1, sizeof(*vm));
    char err[256];
    struct json_object *o = json_tokener_parse(json);
    vmcfg_init(&vm->cfg);
    ck_assert_int_eq(vmcfg_parse(o, VMCFG_WIRE, &vm->cfg, err, sizeof(err)), 0);
    json_object_put(o);
    memcpy(vm->fds, fds, nfds * sizeof(int));
    vm->nfds = nfds;
    vm->cid = 2048;
    vm->dir = strdup(scratch_path("vm-2048"));
    ck_assert_int_eq(mkdir(vm->dir, 0700), 0);
    return vm;
}

START_TEST(disk_fds_of_the_wrong_kind_refused)
{
    int sv[2];
    char err[256];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(mkfifo(scratch_path("fifo"), 0600), 0);
    int kinds[3] = { sv[0], open(scratch_dir, O_RDONLY | O_DIRECTORY),
                     open(scratch_path("fifo"), O_RDWR) };
    const char *want[3] = { "is a socket", "is a directory", "is a FIFO" };
    for (int i = 0; i < 3; i++) {
        ck_assert_int_ge(kinds[i], 0);
        struct managed_vm *vm = vm_with("{\"program\":\"/p\",\"disks\":[{\"image_fd\":0}]}",
                                        &kinds[i], 1);
        ck_assert_int_eq(mvm_check_fds(vm, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "disks[0].image_fd: fd index 0") && strstr(err, want[i]),
                      "%s", err);
        mvm_free(vm);       /* closes the fd, removes the folder */
        ck_assert_int_eq(access(scratch_path("vm-2048"), F_OK), -1);
    }
    close(sv[1]);
}
END_TEST

START_TEST(disk_fds_must_all_be_named_once)
{
    char err[256];
    int fds[2] = { open("/dev/null", O_RDONLY), open("/dev/null", O_RDONLY) };

    struct managed_vm *vm = vm_with("{\"program\":\"/p\",\"console_fd\":0}", fds, 2);
    ck_assert_int_eq(mvm_check_fds(vm, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "carries 2 fds but the config names only 1"));
    mvm_free(vm);
    int fd = open("/dev/null", O_RDONLY);
    vm = vm_with("{\"program\":\"/p\",\"console_fd\":0,\"log_fd\":0}", &fd, 1);
    ck_assert_int_eq(mvm_check_fds(vm, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "log_fd: fd index 0 is already used"));
    mvm_free(vm);
    fd = open("/dev/null", O_RDONLY);
    vm = vm_with("{\"program\":\"/p\",\"log_fd\":3}", &fd, 1);
    ck_assert_int_eq(mvm_check_fds(vm, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "log_fd: fd index 3, but the request carries 1 fds"));
    mvm_free(vm);
}
END_TEST

START_TEST(partitions_from_fds_become_a_composite)
{
    char err[256];

    scratch_fill("a.img", 8192, 0xaa);
    scratch_fill("b.img", 4096, 0xbb);
    int fds[2] = { open(scratch_path("a.img"), O_RDWR), open(scratch_path("b.img"), O_RDONLY) };
    struct managed_vm *vm = vm_with("{\"program\":\"/p\",\"disks\":[{\"partitions\":["
                                    "{\"label\":\"a\",\"fd\":0,\"writable\":true},"
                                    "{\"label\":\"b\",\"fd\":1}]}]}", fds, 2);
    ck_assert_int_eq(mvm_check_fds(vm, err, sizeof(err)), 0);
    ck_assert_int_eq(mvm_build_composites(vm, err, sizeof(err)), 0);
    /* The composite names the descriptors, not the files behind them. */
    char comp[256];
    snprintf(comp, sizeof(comp), "%s/disk0.composite", vm->dir);
    FILE *f = fopen(comp, "rb");
    ck_assert_ptr_nonnull(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char want[32];
    snprintf(want, sizeof(want), "/proc/self/fd/%d", fds[0]);
    ck_assert_ptr_nonnull(memmem(buf, n, want, strlen(want)));
    ck_assert_ptr_null(memmem(buf, n, "a.img", 5));
    /* And opens as a disk whose partitions hold the images' bytes. */
    struct disk *d;
    ck_assert_int_eq(disk_open(comp, 1, &d, err, sizeof(err)), 0);
    uint8_t sec[512];
    uint64_t first = 0;
    /* the first partition starts after the GPT header region */
    for (uint64_t s = 0; s < 2048 && !first; s++) {
        ck_assert_int_eq(disk_read(d, s * 512, sec, 512), 0);
        if (sec[0] == 0xaa && sec[511] == 0xaa)
            first = s;
    }
    ck_assert_uint_gt(first, 0);
    disk_close(d);
    mvm_free(vm);
    ck_assert_int_eq(access(comp, F_OK), -1);
}
END_TEST

/* ---- exit reasons ------------------------------------------------------------------ */

START_TEST(reasons_from_wait_status)
{
    static const struct { int status; const char *reason, *detail; } cases[] = {
        { 0, "shutdown", "shut down" },
        { 3 << 8, "shutdown", "exited with code 1" },
        { 2 << 8, "error", "error at start" },
        { 4 << 8, "crash", "guest fault" },
        { 6 << 8, "crash", "guest hung" },
        { 10 << 8, "error", "internal error" },
        { SIGKILL, "killed", "SIGKILL" },
        { SIGSYS, "crash", "SIGSYS" },
        { SIGSEGV, "crash", "SIGSEGV" },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *reason;
        char detail[160];
        mvm_reason(cases[i].status, &reason, detail, sizeof(detail));
        ck_assert_str_eq(reason, cases[i].reason);
        ck_assert_msg(strstr(detail, cases[i].detail), "%s", detail);
    }
}
END_TEST

/* ---- create-partition -------------------------------------------------------------- */

START_TEST(partition_raw_is_sparse)
{
    char err[256];
    struct stat st;

    ck_assert_int_eq(vm_partition_create(scratch_path("r.img"), 64 << 20, VM_PARTITION_RAW,
                                         err, sizeof(err)), 0);
    ck_assert_int_eq(stat(scratch_path("r.img"), &st), 0);
    ck_assert_int_eq(st.st_size, 64 << 20);
    ck_assert_int_lt(st.st_blocks * 512, 1 << 20);
    /* Never replaces a file. */
    ck_assert_int_eq(vm_partition_create(scratch_path("r.img"), 4096, VM_PARTITION_RAW, err,
                                         sizeof(err)), -EEXIST);
    ck_assert_int_eq(stat(scratch_path("r.img"), &st), 0);
    ck_assert_int_eq(st.st_size, 64 << 20);
}
END_TEST

START_TEST(partition_instance_header)
{
    char err[256];
    uint8_t buf[32];

    ck_assert_int_eq(vm_partition_create(scratch_path("i.img"), 1 << 20, VM_PARTITION_INSTANCE,
                                         err, sizeof(err)), 0);
    FILE *f = fopen(scratch_path("i.img"), "rb");
    ck_assert_uint_eq(fread(buf, 1, sizeof(buf), f), sizeof(buf));
    fclose(f);
    ck_assert_int_eq(memcmp(buf, "Android-VM-instance", 19), 0);
    ck_assert_uint_eq(buf[19], 1);      /* version 1, little endian */
    ck_assert_uint_eq(buf[20], 0);
    ck_assert_uint_eq(buf[21], 0);
    ck_assert_int_eq(vm_partition_create(scratch_path("tiny.img"), 20, VM_PARTITION_INSTANCE,
                                         err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "SIZE 20: an instance image needs at least 21 bytes"));
    ck_assert_int_eq(access(scratch_path("tiny.img"), F_OK), -1);
}
END_TEST

static Suite *virtmgr_suite(void)
{
    Suite *s = suite_create("virtmgr");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_add_test(tc, cid_sequence_wraps_and_skips_live);
    tcase_add_test(tc, cid_default_range_starts_at_2048);
    tcase_add_test(tc, cid_persisted_across_restart);
    tcase_add_test(tc, cid_corrupt_state_refused);
    tcase_add_test(tc, config_full_file_parses_and_round_trips);
    tcase_add_loop_test(tc, config_bad_file_names_the_key, 0,
                        sizeof(bad_configs) / sizeof(bad_configs[0]));
    tcase_add_test(tc, config_wire_form_takes_fds_not_paths);
    tcase_add_test(tc, config_load_names_the_file);
    tcase_add_test(tc, msg_carries_fds);
    tcase_add_test(tc, msg_bad_messages_refused_fds_closed);
    tcase_add_test(tc, disk_fds_of_the_wrong_kind_refused);
    tcase_add_test(tc, disk_fds_must_all_be_named_once);
    tcase_add_test(tc, partitions_from_fds_become_a_composite);
    tcase_add_test(tc, reasons_from_wait_status);
    tcase_add_test(tc, partition_raw_is_sparse);
    tcase_add_test(tc, partition_instance_header);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(virtmgr_suite());
}
