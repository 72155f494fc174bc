/* Fuzz target: control-socket requests.
 * 1. Every input: split into lines as the server's framing does, each of the first 64
 *    lines through the parser and dispatcher against a fake VM. Invariants: each response
 *    is one line of valid JSON with a boolean "ok", an error response carries a string
 *    "error", and the VM changes only when the answer is ok:true.
 * 2. One input in SOCKET_ONE_IN * (1 + lines / 64) (chosen by a hash of the input, so the
 *    choice is the same on every run of it), and every input under the reproducer
 *    (fuzz/reproduce_main.c, which `make test` replays the corpus with): the same bytes
 *    written to a real server (vmm/control.c, one server for the whole process) over a
 *    Unix socket, then the write side shut down. Invariants: the server answers every
 *    message (every line, plus a non-empty tail ended by the shutdown) with one valid JSON
 *    line, then closes; it never hangs or crashes. A poll round costs tens of microseconds
 *    under ASan, so doing this for every input held the target at ~1000 exec/s. */
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

/* The JSON value that is exactly s[0, len), or NULL. One tokener for the whole process. */
static struct json_object *parse_whole(const char *s, size_t len)
{
    static struct json_tokener *tok;
    struct json_object *o;

    if (!tok && !(tok = json_tokener_new()))
        abort();
    json_tokener_reset(tok);
    o = json_tokener_parse_ex(tok, s, (int)len);
    if (o && (json_tokener_get_error(tok) != json_tokener_success ||
              json_tokener_get_parse_end(tok) != len)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

/* What a response line says: 1 ok:true; 0 ok:false with a non-empty string "error";
 * -1 anything else (not one JSON object, no boolean "ok", an error without a reason). */
static int parse_verdict(const char *s, size_t len)
{
    struct json_object *resp = parse_whole(s, len), *ok, *err;
    int v = -1;

    if (resp && json_object_is_type(resp, json_type_object) &&
        json_object_object_get_ex(resp, "ok", &ok) && json_object_is_type(ok, json_type_boolean)) {
        if (json_object_get_boolean(ok))
            v = 1;
        else if (json_object_object_get_ex(resp, "error", &err) &&
                 json_object_is_type(err, json_type_string) && json_object_get_string_len(err))
            v = 0;
    }
    json_object_put(resp);
    return v;
}

/* The verdict is a function of the bytes alone, and most responses recur (the same
 * refusal for many inputs): recently seen lines are kept with their verdict, so a line is
 * parsed only the first time. Parsing every response was a fifth of the run. */
#define VCACHE 1024
#define VCACHE_LINE 480
struct vcache_entry {
    uint32_t len;
    int verdict;
    char line[VCACHE_LINE];
};
static struct vcache_entry vcache[VCACHE];

static int verdict(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    struct vcache_entry *c = &vcache[h % VCACHE];
    if (len && c->len == len && !memcmp(c->line, s, len))
        return c->verdict;
    int v = parse_verdict(s, len);
    if (len && len <= VCACHE_LINE) {
        c->len = (uint32_t)len;
        c->verdict = v;
        memcpy(c->line, s, len);
    }
    return v;
}

static void check_one(struct fake_vm *vm, const char *msg, size_t len)
{
    struct fake_vm before = *vm;
    char *line = control_handle_message(&fake_vm_ops, vm, msg, len);
    int v;

    if (!line)
        abort();    /* only allowed when memory runs out */
    if (strchr(line, '\n'))
        abort();    /* would break the framing */
    v = verdict(line, strlen(line));
    if (v < 0)
        abort();    /* not a well-formed response */
    if (v == 0 && memcmp(&before, vm, sizeof before) != 0)
        abort();    /* a refused request changed the VM */
    free(line);
}

static void check_line(const char *line, size_t len)
{
    if (verdict(line, len) < 0)
        abort();    /* not a well-formed response */
}

/* One input in this many (of up to 63 lines; more lines, less often) goes through the
 * socket while fuzzing. */
#define SOCKET_ONE_IN 32

/* Defined (as 1) only by the plain reproducer: there every input goes through the socket. */
extern const int fz_reproducer __attribute__((weak));

static size_t count_newlines(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    size_t n = 0;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))))
        p++, n++;
    return n;
}

static int through_socket_wanted(const uint8_t *data, size_t size, size_t newlines)
{
    uint32_t h = 2166136261u ^ (uint32_t)size;  /* FNV-1a over the size and 32 bytes */

    if (&fz_reproducer && fz_reproducer)
        return 1;
    for (size_t i = 0; i < size && i < 32; i++)
        h = (h ^ data[i]) * 16777619u;
    /* The server answers every line, the in-process pass stops at 64: an input of many
     * lines is picked proportionally less often, so the socket stays a small share. */
    return h % (SOCKET_ONE_IN * (1 + (newlines + 1) / 64)) == 0;
}

/* More answer bytes than this for one input: the server is looping. */
#define ANSWERS_MAX (64u << 20)

static struct control_server *srv;
static struct fake_vm srv_vm;
static char srv_dir[64], srv_path[96];

static void srv_cleanup(void)
{
    control_server_close(srv);
    rmdir(srv_dir);
}

/* `newlines`: how many the input holds. */
static void through_socket(const uint8_t *data, size_t size, size_t newlines)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    /* Grows as needed: answers to a 64 KiB input of empty lines run to megabytes (a fixed
     * 64 KiB buffer was a harness bug, fuzz/crashes/control/crash-7eb8ad09…). */
    static char *buf;
    static size_t cap;
    /* One answer per line, plus one for a non-empty tail that the shutdown ends. */
    size_t expected = newlines + (size && data[size - 1] != '\n');
    size_t off = 0, have = 0, lines = 0, i;
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

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memcpy(sa.sun_path, srv_path, strlen(srv_path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
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
        if (have == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            if (cap > ANSWERS_MAX || !(buf = realloc(buf, cap)))
                abort();    /* answers without end */
        }
        n = recv(fd, buf + have, cap - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        else if (n == 0)
            eof = 1;
        if (++spins > 200000)
            abort();    /* the server stopped answering */
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
    if (size <= CONTROL_MAX_MESSAGE) {
        size_t newlines = count_newlines(data, size);

        if (through_socket_wanted(data, size, newlines))
            through_socket(data, size, newlines);
    }
    return 0;
}
