/* The control-socket clients: `vmlab stop|suspend|resume|stats|disk|snapshot|fault|trace
 * ... SOCKET`, argument shapes as in crosvm. One request per invocation; human output by
 * default, the server's JSON line with --json. Exit status: 0 success, 1 the VM refused
 * the request, 2 bad command line, 3 the VM could not be reached or answered nonsense. */
#include "cmd_control.h"
#include "control_proto.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define EXIT_OK 0
#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define RESPONSE_MAX (1024 * 1024)

struct verb_spec {
    const char *verb;
    const char *op;             /* NULL: no sub-command word */
    enum control_cmd cmd;
    const char *args;           /* positional arguments between op and SOCKET */
    unsigned nargs;
    const char *what;
};

static const struct verb_spec verbs[] = {
    { "stop", NULL, CONTROL_STOP, "", 0, "Stops the VM (it exits as if powered off)." },
    { "suspend", NULL, CONTROL_SUSPEND, "", 0, "Pauses the vCPU; devices stop advancing." },
    { "resume", NULL, CONTROL_RESUME, "", 0, "Continues a suspended VM." },
    { "stats", NULL, CONTROL_STATS, "", 0,
      "Prints run state, virtual time, instructions, exits and queue counters." },
    { "disk", "resize", CONTROL_DISK_RESIZE, "INDEX SIZE", 2,
      "Resizes disk INDEX to SIZE bytes (suffixes K, M, G, T: powers of 1024) and\n"
      "signals a configuration change to the guest." },
    { "snapshot", "take", CONTROL_SNAPSHOT_TAKE, "PATH", 1,
      "Writes the VM's state to PATH (restore with `vmlab run --restore PATH`)." },
    { "fault", "inject", CONTROL_FAULT_INJECT, "DISK PLAN", 2,
      "Arms the disk fault plan PLAN on disk DISK from now on." },
    { "trace", "start", CONTROL_TRACE_START, "PATH", 1, "Starts recording a trace to PATH." },
    { "trace", "stop", CONTROL_TRACE_STOP, "", 0, "Stops recording and closes the trace." },
    { "balloon", NULL, CONTROL_BALLOON, "SIZE", 1,
      "Asks the guest to give SIZE bytes back to the host (0: none; K/M/G/T suffixes).\n"
      "--wait: return once the guest reports the balloon at that size (up to --timeout)." },
    { "balloon_stats", NULL, CONTROL_BALLOON_STATS, "", 0,
      "Prints the balloon's target and actual size and the guest's memory statistics." },
};
#define NVERBS (sizeof verbs / sizeof verbs[0])

static void usage(FILE *f, const char *verb)
{
    size_t i;
    int any = 0;

    for (i = 0; i < NVERBS; i++) {
        const struct verb_spec *v = &verbs[i];

        if (verb && strcmp(v->verb, verb) != 0)
            continue;
        fprintf(f, "%susage: vmlab %s%s%s%s%s [--json] [--timeout SECONDS] SOCKET\n",
                any ? "\n" : "", v->verb, v->op ? " " : "", v->op ? v->op : "",
                v->nargs ? " " : "", v->args);
        fprintf(f, "%s\n", v->what);
        any = 1;
    }
    if (any)
        fprintf(f, "\nSOCKET is the path given to `vmlab run --socket`. --json prints the VM's\n"
                   "JSON answer (vmm/CONTROL.md). Exit status: 0 done, 1 refused by the VM,\n"
                   "2 bad command line, 3 VM unreachable.\n");
}

static int parse_index(const char *verb, const char *name, const char *s, unsigned *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (!s[0] || s[0] == '-' || *end || errno || v > CONTROL_MAX_INDEX) {
        fprintf(stderr, "vmlab: %s: %s \"%s\" is not a non-negative integer\n", verb, name, s);
        return -EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_size(const char *verb, const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (end != s && *end && !end[1]) {
        switch (*end) {
        case 'K': case 'k': shift = 10; end++; break;
        case 'M': case 'm': shift = 20; end++; break;
        case 'G': case 'g': shift = 30; end++; break;
        case 'T': case 't': shift = 40; end++; break;
        }
    }
    if (!s[0] || s[0] == '-' || end == s || *end || errno || v == 0 ||
        v > ((uint64_t)INT64_MAX >> shift)) {
        fprintf(stderr, "vmlab: %s: SIZE \"%s\" is not a size in bytes (1..2^63-1, "
                "optional K/M/G/T suffix)\n", verb, s);
        return -EINVAL;
    }
    *out = (uint64_t)v << shift;
    return 0;
}

static int copy_arg(const char *verb, const char *name, const char *s, char *out, size_t cap)
{
    size_t len = strlen(s);

    if (len == 0 || len >= cap) {
        fprintf(stderr, "vmlab: %s: %s must be 1..%zu bytes\n", verb, name, cap - 1);
        return -EINVAL;
    }
    memcpy(out, s, len + 1);
    return 0;
}

static int connect_socket(const char *verb, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "vmlab: %s: socket path \"%s\" is longer than %zu bytes\n", verb, path,
                sizeof sa.sun_path - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "vmlab: %s: socket: %s\n", verb, strerror(errno));
        return -errno;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;

        if (e == ENOENT)
            fprintf(stderr, "vmlab: %s: no control socket at %s (is a VM running with "
                    "--socket %s?)\n", verb, path, path);
        else if (e == ECONNREFUSED)
            fprintf(stderr, "vmlab: %s: control socket %s refuses connections (no VM is "
                    "serving it any more)\n", verb, path);
        else if (e == ENOTSOCK)
            fprintf(stderr, "vmlab: %s: %s is not a socket\n", verb, path);
        else
            fprintf(stderr, "vmlab: %s: cannot connect to %s: %s\n", verb, path, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends one request line and reads one response line. 0, or -errno after a message. */
static int exchange(const char *verb, int fd, const char *req, int timeout_s, char **resp)
{
    size_t len = strlen(req), off = 0, cap = 4096, have = 0;
    int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;
    char *buf;

    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "vmlab: %s: sending the request: %s\n", verb, strerror(errno));
            return -errno;
        }
        off += (size_t)n;
    }
    buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int64_t left = deadline - mono_ms();
        ssize_t n;
        int rc;

        if (left <= 0) {
            fprintf(stderr, "vmlab: %s: no answer from the VM within %d s\n", verb, timeout_s);
            free(buf);
            return -ETIMEDOUT;
        }
        rc = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (rc < 0 && errno != EINTR) {
            fprintf(stderr, "vmlab: %s: poll: %s\n", verb, strerror(errno));
            free(buf);
            return -errno;
        }
        if (rc <= 0)
            continue;
        if (have + 1 >= cap) {
            char *p2;

            if (cap >= RESPONSE_MAX) {
                fprintf(stderr, "vmlab: %s: the VM's answer exceeds %d bytes\n", verb,
                        RESPONSE_MAX);
                free(buf);
                return -EPROTO;
            }
            p2 = realloc(buf, cap * 2);
            if (!p2) {
                free(buf);
                return -ENOMEM;
            }
            buf = p2;
            cap *= 2;
        }
        n = recv(fd, buf + have, cap - have - 1, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "vmlab: %s: reading the answer: %s\n", verb, strerror(errno));
            free(buf);
            return -errno;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        if (memchr(buf + have - (size_t)n, '\n', (size_t)n))
            break;
    }
    buf[have] = '\0';
    if (!memchr(buf, '\n', have)) {
        fprintf(stderr, "vmlab: %s: the VM closed the connection without answering\n", verb);
        free(buf);
        return -EPROTO;
    }
    *strchr(buf, '\n') = '\0';
    *resp = buf;
    return 0;
}

int control_client_call(const char *name, const char *sock, const char *request,
                        int timeout_s, int print_json, struct json_object **resp_out)
{
    struct json_object *resp = NULL, *okv, *errv;
    char *line = NULL, *msg;
    int status = EXIT_UNREACHABLE, fd = connect_socket(name, sock);

    *resp_out = NULL;
    if (fd < 0)
        return EXIT_UNREACHABLE;
    msg = malloc(strlen(request) + 2);
    if (!msg)
        goto out;
    sprintf(msg, "%s\n", request);
    if (exchange(name, fd, msg, timeout_s, &line) < 0) {
        free(msg);
        goto out;
    }
    free(msg);
    resp = json_tokener_parse(line);
    if (!resp || !json_object_is_type(resp, json_type_object) ||
        !json_object_object_get_ex(resp, "ok", &okv) ||
        !json_object_is_type(okv, json_type_boolean)) {
        fprintf(stderr, "vmlab: %s: malformed answer from the VM: %.200s\n", name, line);
        goto out;
    }
    if (print_json)
        printf("%s\n", line);
    if (!json_object_get_boolean(okv)) {
        const char *m = "the VM refused the request";

        if (json_object_object_get_ex(resp, "error", &errv) &&
            json_object_is_type(errv, json_type_string))
            m = json_object_get_string(errv);
        fprintf(stderr, "vmlab: %s: %s\n", name, m);
        status = EXIT_REFUSED;
        goto out;
    }
    status = EXIT_OK;
    *resp_out = resp;
    resp = NULL;
out:
    close(fd);
    json_object_put(resp);
    free(line);
    return status;
}

/* balloon --wait: polls balloon_stats until the guest reports `size` (crosvm's balloon
 * --wait). Not done within timeout_s: exit status 1 with the sizes seen. */
static int balloon_wait(const char *name, const char *sock, uint64_t size, int timeout_s,
                        int print_json)
{
    int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;
    int64_t actual = -1;

    for (;;) {
        struct json_object *resp, *b, *a;
        int st = control_client_call(name, sock, "{\"cmd\":\"balloon_stats\"}", timeout_s, 0,
                                     &resp);
        if (st != EXIT_OK)
            return st;
        if (json_object_object_get_ex(resp, "balloon", &b) &&
            json_object_object_get_ex(b, "actual", &a))
            actual = json_object_get_int64(a);
        json_object_put(resp);
        if (actual == (int64_t)size) {
            if (print_json)
                printf("{\"ok\":true,\"actual\":%" PRId64 "}\n", actual);
            else
                printf("balloon at %" PRIu64 " bytes\n", size);
            return EXIT_OK;
        }
        if (mono_ms() >= deadline) {
            fprintf(stderr, "vmlab: %s: the guest reports the balloon at %" PRId64 " bytes, "
                    "not %" PRIu64 ", after %d s\n", name, actual, size, timeout_s);
            return EXIT_REFUSED;
        }
        poll(NULL, 0, 50);
    }
}

/* Stats as an indented key/value listing; works for whatever members the VM adds. */
static void print_value(const char *key, struct json_object *v, int depth)
{
    int pad = 24 - 2 * depth;

    if (pad < 1)
        pad = 1;
    switch (json_object_get_type(v)) {
    case json_type_object:
        printf("%*s%s:\n", 2 * depth, "", key);
        {
            json_object_object_foreach(v, k, sub)
                print_value(k, sub, depth + 1);
        }
        break;
    case json_type_array: {
        size_t i, n = json_object_array_length(v);

        printf("%*s%s:\n", 2 * depth, "", key);
        for (i = 0; i < n; i++) {
            char idx[24];

            snprintf(idx, sizeof idx, "[%zu]", i);
            print_value(idx, json_object_array_get_idx(v, i), depth + 1);
        }
        break;
    }
    case json_type_string:
        printf("%*s%-*s %s\n", 2 * depth, "", pad, key, json_object_get_string(v));
        break;
    default:
        printf("%*s%-*s %s\n", 2 * depth, "", pad, key,
               json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        break;
    }
}

static void print_human(const struct control_request *req, struct json_object *resp)
{
    struct json_object *stats;

    switch (req->cmd) {
    case CONTROL_STOP: printf("stop requested\n"); break;
    case CONTROL_SUSPEND: printf("suspended\n"); break;
    case CONTROL_RESUME: printf("resumed\n"); break;
    case CONTROL_STATS:
        if (json_object_object_get_ex(resp, "stats", &stats) &&
            json_object_is_type(stats, json_type_object)) {
            json_object_object_foreach(stats, k, v)
                print_value(k, v, 0);
        }
        break;
    case CONTROL_DISK_RESIZE:
        printf("disk %u resized to %" PRIu64 " bytes\n", req->index, req->size);
        break;
    case CONTROL_SNAPSHOT_TAKE: printf("snapshot written to %s\n", req->path); break;
    case CONTROL_FAULT_INJECT: printf("fault plan armed on disk %u\n", req->index); break;
    case CONTROL_TRACE_START: printf("tracing to %s\n", req->path); break;
    case CONTROL_TRACE_STOP: printf("trace stopped\n"); break;
    case CONTROL_INPUT: printf("input delivered\n"); break;
    case CONTROL_BALLOON: printf("balloon target set to %" PRIu64 " bytes\n", req->size); break;
    case CONTROL_BALLOON_STATS:
        if (json_object_object_get_ex(resp, "balloon", &stats) &&
            json_object_is_type(stats, json_type_object)) {
            json_object_object_foreach(stats, k, v)
                print_value(k, v, 0);
        }
        break;
    case CONTROL_CMD_COUNT: break;
    }
}

int cmd_control_is_verb(const char *verb)
{
    size_t i;

    for (i = 0; i < NVERBS; i++) {
        if (strcmp(verbs[i].verb, verb) == 0)
            return 1;
    }
    return 0;
}

int cmd_control(const char *verb, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "wait", no_argument, NULL, 'w' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const struct verb_spec *v = NULL;
    struct control_request *req = NULL;
    struct json_object *reqj = NULL, *resp = NULL;
    char name[32], *end;
    const char *sock;
    int json = 0, wait = 0, timeout_s = 10, opt, npos, status = EXIT_USAGE;
    size_t i;

    for (i = 0; i < NVERBS; i++) {
        if (strcmp(verbs[i].verb, verb) == 0)
            break;
    }
    if (i == NVERBS) {
        fprintf(stderr, "vmlab: unknown control command \"%s\"\n", verb);
        return EXIT_USAGE;
    }
    optind = 0;     /* a full getopt reset: callers may have used it already */
    opterr = 0;     /* our own one-line messages below */
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'w':
            if (strcmp(verb, "balloon")) {
                fprintf(stderr, "vmlab: %s: --wait is for balloon only\n", verb);
                return EXIT_USAGE;
            }
            wait = 1;
            break;
        case 't':
            errno = 0;
            timeout_s = (int)strtol(optarg, &end, 10);
            if (errno || *end || !optarg[0] || timeout_s <= 0 || timeout_s > 86400) {
                fprintf(stderr, "vmlab: %s: --timeout \"%s\" is not 1..86400 seconds\n", verb,
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout, verb);
            return EXIT_OK;
        case ':':
            fprintf(stderr, "vmlab: %s: option '%s' needs a value (see vmlab %s --help)\n",
                    verb, argv[optind - 1], verb);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "vmlab: %s: unknown option '%s' (see vmlab %s --help)\n", verb,
                    argv[optind - 1], verb);
            return EXIT_USAGE;
        }
    }
    {
        /* GNU getopt moved the operands to the end, so options may go anywhere. */
        char **pos = argv + optind;

        npos = argc - optind;
        /* Which verb_spec: the op word picks it for verbs that take one. */
        for (i = 0; i < NVERBS; i++) {
            if (strcmp(verbs[i].verb, verb) != 0)
                continue;
            if (!verbs[i].op || (npos > 0 && strcmp(verbs[i].op, pos[0]) == 0)) {
                v = &verbs[i];
                break;
            }
        }
        if (!v) {
            if (npos > 0)
                fprintf(stderr, "vmlab: %s: unknown operation \"%s\" (see vmlab %s --help)\n",
                        verb, pos[0], verb);
            else
                fprintf(stderr, "vmlab: %s: missing operation (see vmlab %s --help)\n", verb,
                        verb);
            return EXIT_USAGE;
        }
        snprintf(name, sizeof name, "%s%s%s", v->verb, v->op ? " " : "", v->op ? v->op : "");
        if (npos != (int)v->nargs + (v->op ? 1 : 0) + 1) {
            fprintf(stderr, "vmlab: %s: expected %s%sSOCKET, got %d argument%s (see vmlab "
                    "%s --help)\n", name, v->args, v->nargs ? " " : "", npos - (v->op ? 1 : 0),
                    npos - (v->op ? 1 : 0) == 1 ? "" : "s", name);
            return EXIT_USAGE;
        }
        req = calloc(1, sizeof *req);
        if (!req)
            return EXIT_UNREACHABLE;
        req->cmd = v->cmd;
        {
            char **a = pos + (v->op ? 1 : 0);
            int bad = 0;

            switch (v->cmd) {
            case CONTROL_DISK_RESIZE:
                bad = parse_index(name, "INDEX", a[0], &req->index) < 0 ||
                      parse_size(name, a[1], &req->size) < 0;
                break;
            case CONTROL_SNAPSHOT_TAKE:
            case CONTROL_TRACE_START:
                bad = copy_arg(name, "PATH", a[0], req->path, sizeof req->path) < 0;
                break;
            case CONTROL_FAULT_INJECT:
                bad = parse_index(name, "DISK", a[0], &req->index) < 0 ||
                      copy_arg(name, "PLAN", a[1], req->plan, sizeof req->plan) < 0;
                break;
            case CONTROL_BALLOON:
                /* 0 is a size here: the balloon gives all memory back. */
                if (!strcmp(a[0], "0"))
                    req->size = 0;
                else
                    bad = parse_size(name, a[0], &req->size) < 0;
                break;
            default:
                break;
            }
            sock = a[v->nargs];
            if (bad)
                goto out;
        }
    }

    reqj = control_request_to_json(req);
    if (!reqj) {
        status = EXIT_UNREACHABLE;
        goto out;
    }
    status = control_client_call(name, sock, json_object_to_json_string_ext(
                                     reqj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                                 timeout_s, json, &resp);
    if (status == EXIT_OK && req->cmd == CONTROL_BALLOON && wait)
        status = balloon_wait(name, sock, req->size, timeout_s, json);
    else if (status == EXIT_OK && !json)
        print_human(req, resp);
out:
    fflush(stdout);
    json_object_put(resp);
    json_object_put(reqj);
    free(req);
    return status;
}
