/* Fuzz target: control-socket requests, twice per input.
 * 1. Split into lines as the server's framing does, every line through the parser and
 *    dispatcher against a fake VM. Invariants: each response is one line of valid JSON with
 *    a boolean "ok", an error response carries a string "error", and the VM changes only
 *    when the answer is ok:true.
 * 2. The same bytes written to a real server (vmm/control.c) over a Unix socket, then the
 *    write side shut down. Invariants: the server answers every message (every line, plus
 *    a non-empty tail ended by the shutdown) with one valid JSON line, then closes; it never
 *    hangs or crashes. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tests/control_fake_vm.h"
#include "vmm/control_proto.h"

static void check_one(struct fake_vm *vm, const char *msg, size_t len)
{
    struct fake_vm before = *vm;
    struct json_object *resp, *ok, *err;
    char *line = control_handle_message(&fake_vm_ops, vm, msg, len);

    if (!line)
        abort();    /* only allowed when memory runs out */
    if (strchr(line, '\n'))
        abort();    /* would break the framing */
    resp = json_tokener_parse(line);
    if (!resp || !json_object_is_type(resp, json_type_object) ||
        !json_object_object_get_ex(resp, "ok", &ok) || !json_object_is_type(ok, json_type_boolean))
        abort();
    if (!json_object_get_boolean(ok)) {
        if (!json_object_object_get_ex(resp, "error", &err) ||
            !json_object_is_type(err, json_type_string) || json_object_get_string_len(err) == 0)
            abort();
        if (memcmp(&before, vm, sizeof before) != 0)
            abort();    /* a refused request changed the VM */
    }
    json_object_put(resp);
    free(line);
}

static void check_line(const char *line, size_t len)
{
    struct json_object *resp, *ok;
    char *copy = strndup(line, len);

    if (!copy)
        abort();
    resp = json_tokener_parse(copy);
    if (!resp || !json_object_object_get_ex(resp, "ok", &ok) ||
        !json_object_is_type(ok, json_type_boolean))
        abort();
    json_object_put(resp);
    free(copy);
}

static struct control_server *srv;
static struct fake_vm srv_vm;
static char srv_dir[64], srv_path[96];

static void srv_cleanup(void)
{
    control_server_close(srv);
    rmdir(srv_dir);
}

static void through_socket(const uint8_t *data, size_t size)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t off = 0, have = 0, cap = 1 << 16, expected = 0, lines = 0, i;
    char *buf = malloc(cap);
    unsigned spins = 0;
    int fd, eof = 0;

    if (!srv) {
        char err[256];

        snprintf(srv_dir, sizeof srv_dir, "/tmp/vmlab-fuzz-ctl-XXXXXX");
        if (!mkdtemp(srv_dir))
            abort();
        snprintf(srv_path, sizeof srv_path, "%s/s", srv_dir);
        fake_vm_init(&srv_vm);
        if (control_server_open(&srv, srv_path, &fake_vm_ops, &srv_vm, err, sizeof err) < 0)
            abort();
        atexit(srv_cleanup);
    }
    fake_vm_init(&srv_vm);
    for (i = 0; i < size; i++)
        expected += data[i] == '\n';
    if (size && data[size - 1] != '\n')
        expected++;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memcpy(sa.sun_path, srv_path, strlen(srv_path) + 1);
    if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        abort();
    while (!eof) {
        ssize_t n;

        if (off < size) {
            n = send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                off += (size_t)n;
            if (off == size)
                shutdown(fd, SHUT_WR);
        } else if (off == 0) {
            shutdown(fd, SHUT_WR);
            off = 1;    /* empty input: nothing to send, only the shutdown */
            size = 1;
        }
        control_server_poll(srv);
        n = recv(fd, buf + have, cap - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        else if (n == 0)
            eof = 1;
        if (have == cap || ++spins > 200000)
            abort();    /* answers too long, or the server stopped answering */
    }
    close(fd);
    for (i = 0, off = 0; i < have; i++) {
        if (buf[i] == '\n') {
            check_line(buf + off, i - off);
            off = i + 1;
            lines++;
        }
    }
    if (off != have || lines != expected)
        abort();    /* a message went unanswered, or an answer was cut */
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct fake_vm vm;
    unsigned lines = 0;

    fake_vm_init(&vm);
    while (p < end && lines++ < 64) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

        check_one(&vm, p, len);
        p += len + 1;
    }
    if (size <= CONTROL_MAX_MESSAGE)
        through_socket(data, size);
    return 0;
}
