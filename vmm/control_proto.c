/* Control protocol: one JSON object per request, validated field by field against a table,
 * so that every command accepts exactly its fields and nothing else. */
#include "control_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

enum field_kind {
    FIELD_INDEX,    /* integer 0..CONTROL_MAX_INDEX -> req->index */
    FIELD_SIZE,     /* integer 1..INT64_MAX -> req->size */
    FIELD_PATH,     /* non-empty string -> req->path */
    FIELD_PLAN,     /* non-empty string -> req->plan */
    FIELD_BYTES,    /* integer 0..INT64_MAX -> req->size */
    FIELD_EVENTS,   /* array of 1..CONTROL_MAX_EVENTS [type, code, value] -> req->events */
    FIELD_FRAME,    /* integer 0..1e9 -> req->frame_ns */
};

struct field_spec {
    const char *name;
    enum field_kind kind;
    int optional;               /* may be left out (its value is then 0) */
};

#define MAX_FIELDS 3

struct cmd_spec {
    const char *cmd;
    const char *op;             /* NULL: the command takes no "op" */
    const char *name;           /* as a user types it */
    struct field_spec fields[MAX_FIELDS];
    unsigned nfields;
};

static const struct cmd_spec cmd_specs[CONTROL_CMD_COUNT] = {
    [CONTROL_STOP] = { "stop", NULL, "stop", {{0}}, 0 },
    [CONTROL_SUSPEND] = { "suspend", NULL, "suspend", {{0}}, 0 },
    [CONTROL_RESUME] = { "resume", NULL, "resume", {{0}}, 0 },
    [CONTROL_STATS] = { "stats", NULL, "stats", {{0}}, 0 },
    [CONTROL_DISK_RESIZE] = { "disk", "resize", "disk resize",
                              { { "index", FIELD_INDEX }, { "size", FIELD_SIZE } }, 2 },
    [CONTROL_SNAPSHOT_TAKE] = { "snapshot", "take", "snapshot take",
                                { { "path", FIELD_PATH } }, 1 },
    [CONTROL_FAULT_INJECT] = { "fault", "inject", "fault inject",
                               { { "disk", FIELD_INDEX }, { "plan", FIELD_PLAN } }, 2 },
    [CONTROL_TRACE_START] = { "trace", "start", "trace start", { { "path", FIELD_PATH } }, 1 },
    [CONTROL_TRACE_STOP] = { "trace", "stop", "trace stop", {{0}}, 0 },
    [CONTROL_INPUT] = { "input", NULL, "input",
                        { { "index", FIELD_INDEX, 0 }, { "events", FIELD_EVENTS, 0 },
                          { "frame_ns", FIELD_FRAME, 1 } }, 3 },
    [CONTROL_BALLOON] = { "balloon", NULL, "balloon", { { "size", FIELD_BYTES, 0 } }, 1 },
    [CONTROL_BALLOON_STATS] = { "balloon_stats", NULL, "balloon_stats", {{0}}, 0 },
};

const char *control_cmd_name(enum control_cmd cmd)
{
    return (unsigned)cmd < CONTROL_CMD_COUNT ? cmd_specs[cmd].name : "?";
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A JSON value as it appears in an error message: compact, one line, cut at 48 bytes. */
static const char *describe(struct json_object *v, char *buf, size_t n)
{
    const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t len = strlen(s);

    if (len > 48)
        snprintf(buf, n, "%.45s...", s);
    else
        snprintf(buf, n, "%s", s);
    return buf;
}

static const char *type_word(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double: return "a number with a fraction";
    case json_type_int: return "an integer";
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    }
    return "?";
}

/* Integers are range-checked on their decimal text: json-c clamps values beyond int64. */
static int parse_uint_field(struct json_object *v, const char *name, uint64_t min, uint64_t max,
                            uint64_t *out, char *err, size_t errlen)
{
    char vb[64];
    const char *text;
    char *end;
    unsigned long long u;

    if (!json_object_is_type(v, json_type_int)) {
        set_err(err, errlen, "field \"%s\": expected an integer, got %s %s", name,
                type_word(v), describe(v, vb, sizeof vb));
        return -EINVAL;
    }
    text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    errno = 0;
    u = strtoull(text, &end, 10);
    if (text[0] == '-' || errno || *end || u < min || u > max) {
        set_err(err, errlen, "field \"%s\": %s out of range %" PRIu64 "..%" PRIu64, name,
                describe(v, vb, sizeof vb), min, max);
        return -EINVAL;
    }
    *out = u;
    return 0;
}

static int parse_string_field(struct json_object *v, const char *name, char *out, size_t cap,
                              char *err, size_t errlen)
{
    char vb[64];
    const char *s;
    size_t len;

    if (!json_object_is_type(v, json_type_string)) {
        set_err(err, errlen, "field \"%s\": expected a string, got %s %s", name, type_word(v),
                describe(v, vb, sizeof vb));
        return -EINVAL;
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (len == 0) {
        set_err(err, errlen, "field \"%s\": must not be empty", name);
        return -EINVAL;
    }
    if (strlen(s) != len) {
        set_err(err, errlen, "field \"%s\": %s contains a NUL character", name,
                describe(v, vb, sizeof vb));
        return -EINVAL;
    }
    if (len >= cap) {
        set_err(err, errlen, "field \"%s\": %zu bytes, longer than the limit of %zu", name, len,
                cap - 1);
        return -EINVAL;
    }
    memcpy(out, s, len + 1);
    return 0;
}

/* "events": [[type, code, value], ...]; type and code 0..65535, value any 32-bit integer
 * (signed, as relative axes send, or unsigned). */
static int parse_events_field(struct json_object *v, const char *name,
                              struct control_request *req, char *err, size_t errlen)
{
    char vb[64];
    size_t n;

    if (!json_object_is_type(v, json_type_array)) {
        set_err(err, errlen, "field \"%s\": expected an array of [type, code, value], got %s "
                "%s", name, type_word(v), describe(v, vb, sizeof vb));
        return -EINVAL;
    }
    n = json_object_array_length(v);
    if (n < 1 || n > CONTROL_MAX_EVENTS) {
        set_err(err, errlen, "field \"%s\": %zu events, expected 1..%d", name, n,
                CONTROL_MAX_EVENTS);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        int64_t x[3];
        static const int64_t lo[3] = { 0, 0, INT32_MIN }, hi[3] = { 0xffff, 0xffff, UINT32_MAX };
        static const char *const what[3] = { "type", "code", "value" };

        if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 3) {
            set_err(err, errlen, "field \"%s\": event %zu is %s, expected [type, code, value]",
                    name, i, describe(e, vb, sizeof vb));
            return -EINVAL;
        }
        for (int k = 0; k < 3; k++) {
            struct json_object *c = json_object_array_get_idx(e, (size_t)k);
            errno = 0;
            x[k] = json_object_is_type(c, json_type_int) ? json_object_get_int64(c) : 0;
            if (!json_object_is_type(c, json_type_int) || errno || x[k] < lo[k] ||
                x[k] > hi[k]) {
                set_err(err, errlen, "field \"%s\": event %zu %s %s is not an integer in "
                        "%" PRId64 "..%" PRId64, name, i, what[k], describe(c, vb, sizeof vb),
                        lo[k], hi[k]);
                return -EINVAL;
            }
        }
        uint16_t type = (uint16_t)x[0], code = (uint16_t)x[1];
        uint32_t value = (uint32_t)x[2];
        uint8_t *p = req->events + i * CONTROL_EVENT_SIZE;
        memcpy(p, &type, 2);
        memcpy(p + 2, &code, 2);
        memcpy(p + 4, &value, 4);
    }
    req->nevents = (unsigned)n;
    return 0;
}

static int parse_field(const struct field_spec *f, struct json_object *v,
                       struct control_request *req, char *err, size_t errlen)
{
    uint64_t u;
    int rc;

    switch (f->kind) {
    case FIELD_INDEX:
        rc = parse_uint_field(v, f->name, 0, CONTROL_MAX_INDEX, &u, err, errlen);
        if (rc == 0)
            req->index = (unsigned)u;
        return rc;
    case FIELD_SIZE:
        rc = parse_uint_field(v, f->name, 1, INT64_MAX, &u, err, errlen);
        if (rc == 0)
            req->size = u;
        return rc;
    case FIELD_PATH:
        return parse_string_field(v, f->name, req->path, sizeof req->path, err, errlen);
    case FIELD_PLAN:
        return parse_string_field(v, f->name, req->plan, sizeof req->plan, err, errlen);
    case FIELD_BYTES:
        return parse_uint_field(v, f->name, 0, INT64_MAX, &req->size, err, errlen);
    case FIELD_FRAME:
        return parse_uint_field(v, f->name, 0, 1000000000, &req->frame_ns, err, errlen);
    case FIELD_EVENTS:
        return parse_events_field(v, f->name, req, err, errlen);
    }
    return -EINVAL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Members of the outermost object, counted on the (already validated) text: json-c keeps
 * only the last of duplicate keys, and a request must not say two things at once. Fills
 * dup with a repeated key's raw text when it finds one. */
static size_t count_top_members(const char *msg, size_t len, char *dup, size_t duplen)
{
    enum { MAX_KEYS = 16 };
    size_t i, members = 0, key_start[MAX_KEYS], key_len[MAX_KEYS], nkeys = 0, start = 0;
    int depth = 0, in_str = 0, any = 0, expect_key = 0;

    dup[0] = '\0';
    for (i = 0; i < len; i++) {
        char c = msg[i];

        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = 0;
                if (expect_key && nkeys < MAX_KEYS) {
                    size_t k;

                    for (k = 0; k < nkeys; k++) {
                        if (key_len[k] == i - start &&
                            memcmp(msg + key_start[k], msg + start, i - start) == 0)
                            snprintf(dup, duplen, "%.*s", (int)(i - start), msg + start);
                    }
                    key_start[nkeys] = start;
                    key_len[nkeys++] = i - start;
                }
                expect_key = 0;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
            start = i + 1;
            if (depth == 1)
                any = 1;
        } else if (c == '{' || c == '[') {
            depth++;
            expect_key = depth == 1;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                break;
        } else if (c == ',' && depth == 1) {
            members++;
            expect_key = 1;
        }
    }
    return any ? members + 1 : 0;
}

/* One tokener per thread, reset for each message (a new one is four allocations), freed
 * when the thread ends. */
static pthread_key_t tokener_key;
static pthread_once_t tokener_once = PTHREAD_ONCE_INIT;
static int tokener_key_ok;

static void tokener_free(void *tok)
{
    json_tokener_free(tok);
}

static void tokener_key_create(void)
{
    tokener_key_ok = pthread_key_create(&tokener_key, tokener_free) == 0;
}

static struct json_tokener *thread_tokener(void)
{
    struct json_tokener *tok;

    pthread_once(&tokener_once, tokener_key_create);
    if (!tokener_key_ok)
        return NULL;
    tok = pthread_getspecific(tokener_key);
    if (!tok) {
        tok = json_tokener_new_ex(16);
        if (!tok)
            return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 |
                                    JSON_TOKENER_ALLOW_TRAILING_CHARS);
        if (pthread_setspecific(tokener_key, tok)) {
            json_tokener_free(tok);
            return NULL;
        }
    }
    json_tokener_reset(tok);
    return tok;
}

/* The JSON text to an object, with strict syntax, valid UTF-8 and nothing after it. */
static struct json_object *parse_json(const char *msg, size_t len, char *err, size_t errlen)
{
    struct json_tokener *tok;
    struct json_object *obj;
    enum json_tokener_error jerr;
    size_t end, i;

    tok = thread_tokener();
    if (!tok) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    obj = json_tokener_parse_ex(tok, msg, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (!obj && jerr == json_tokener_continue) {
        /* A bare number or literal is complete only once its end is seen: say so with a
         * terminating NUL (the message itself holds none). */
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (!obj && jerr == json_tokener_success) {
        set_err(err, errlen, "request must be a JSON object, got null");
        return NULL;
    }
    if (!obj || jerr != json_tokener_success) {
        json_object_put(obj);
        if (jerr == json_tokener_continue)
            set_err(err, errlen, "malformed JSON: message ends inside a value (%zu bytes)", len);
        else
            set_err(err, errlen, "malformed JSON at byte %zu: %s", end,
                    json_tokener_error_desc(jerr == json_tokener_success ?
                                            json_tokener_error_parse_unexpected : jerr));
        return NULL;
    }
    for (i = end; i < len; i++) {
        if (!is_space(msg[i])) {
            json_object_put(obj);
            set_err(err, errlen, "malformed JSON: unexpected data after the object at byte %zu",
                    i);
            return NULL;
        }
    }
    return obj;
}

int control_request_parse(const char *msg, size_t len, struct control_request *req,
                          char *err, size_t errlen)
{
    struct json_object *obj, *v;
    const struct cmd_spec *spec = NULL;
    char vb[64];
    const char *cmd, *op = NULL;
    size_t i;
    unsigned k;
    int rc = -EINVAL;

    memset(req, 0, sizeof *req);
    for (i = 0; i < len && is_space(msg[i]); i++)
        ;
    if (i == len) {
        set_err(err, errlen, "empty request: expected a JSON object such as {\"cmd\":\"stats\"}");
        return -EINVAL;
    }
    if (len > CONTROL_MAX_MESSAGE) {
        set_err(err, errlen, "request of %zu bytes exceeds the limit of %d bytes", len,
                CONTROL_MAX_MESSAGE);
        return -EINVAL;
    }
    if (memchr(msg, '\0', len)) {
        set_err(err, errlen, "malformed JSON: NUL byte at byte %zu",
                (size_t)((const char *)memchr(msg, '\0', len) - msg));
        return -EINVAL;
    }
    obj = parse_json(msg, len, err, errlen);
    if (!obj)
        return -EINVAL;
    if (!json_object_is_type(obj, json_type_object)) {
        set_err(err, errlen, "request must be a JSON object, got %s %s", type_word(obj),
                describe(obj, vb, sizeof vb));
        goto out;
    }

    {
        char dup[64];

        if (count_top_members(msg, len, dup, sizeof dup) !=
            (size_t)json_object_object_length(obj)) {
            if (dup[0])
                set_err(err, errlen, "field \"%s\" appears more than once", dup);
            else
                set_err(err, errlen, "request repeats a field name");
            goto out;
        }
    }
    if (!json_object_object_get_ex(obj, "cmd", &v)) {
        set_err(err, errlen, "missing field \"cmd\"");
        goto out;
    }
    if (!json_object_is_type(v, json_type_string)) {
        set_err(err, errlen, "field \"cmd\": expected a string, got %s %s", type_word(v),
                describe(v, vb, sizeof vb));
        goto out;
    }
    cmd = json_object_get_string(v);
    for (k = 0; k < CONTROL_CMD_COUNT; k++) {
        if (strcmp(cmd_specs[k].cmd, cmd) == 0)
            break;
    }
    if (k == CONTROL_CMD_COUNT || strlen(cmd) != (size_t)json_object_get_string_len(v)) {
        set_err(err, errlen, "field \"cmd\": unknown command %s (expected stop, suspend, "
                "resume, stats, disk, snapshot, fault, trace, input, balloon or balloon_stats)", describe(v, vb, sizeof vb));
        goto out;
    }

    if (cmd_specs[k].op) {
        const char *cmdname = cmd_specs[k].cmd;

        if (!json_object_object_get_ex(obj, "op", &v)) {
            set_err(err, errlen, "missing field \"op\" for command \"%s\"", cmdname);
            goto out;
        }
        if (!json_object_is_type(v, json_type_string)) {
            set_err(err, errlen, "field \"op\": expected a string, got %s %s", type_word(v),
                    describe(v, vb, sizeof vb));
            goto out;
        }
        op = json_object_get_string(v);
        for (; k < CONTROL_CMD_COUNT && strcmp(cmd_specs[k].cmd, cmdname) == 0; k++) {
            if (strcmp(cmd_specs[k].op, op) == 0 &&
                strlen(op) == (size_t)json_object_get_string_len(v))
                break;
        }
        if (k == CONTROL_CMD_COUNT || strcmp(cmd_specs[k].cmd, cmdname) != 0) {
            char ops[64] = "";
            unsigned j;

            for (j = 0; j < CONTROL_CMD_COUNT; j++) {
                if (strcmp(cmd_specs[j].cmd, cmdname) == 0)
                    snprintf(ops + strlen(ops), sizeof ops - strlen(ops), "%s%s",
                             ops[0] ? " or " : "", cmd_specs[j].op);
            }
            set_err(err, errlen, "field \"op\": unknown %s operation %s (expected %s)", cmdname,
                    describe(v, vb, sizeof vb), ops);
            goto out;
        }
    }
    spec = &cmd_specs[k];
    req->cmd = (enum control_cmd)k;

    /* Every member must be known for this command: a typo never passes silently. */
    json_object_object_foreach(obj, key, val) {
        int known = strcmp(key, "cmd") == 0 || (spec->op && strcmp(key, "op") == 0);
        unsigned f;

        (void)val;
        for (f = 0; !known && f < spec->nfields; f++)
            known = strcmp(key, spec->fields[f].name) == 0;
        if (!known) {
            set_err(err, errlen, "unexpected field \"%.64s\" for command \"%s\"", key,
                    spec->name);
            goto out;
        }
    }
    for (k = 0; k < spec->nfields; k++) {
        if (!json_object_object_get_ex(obj, spec->fields[k].name, &v)) {
            if (spec->fields[k].optional)
                continue;
            set_err(err, errlen, "missing field \"%s\" for command \"%s\"",
                    spec->fields[k].name, spec->name);
            goto out;
        }
        if (parse_field(&spec->fields[k], v, req, err, errlen) < 0)
            goto out;
    }
    rc = 0;
out:
    json_object_put(obj);
    if (rc < 0)
        memset(req, 0, sizeof *req);
    return rc;
}

static struct json_object *events_to_json(const struct control_request *req)
{
    struct json_object *a = json_object_new_array();

    for (unsigned i = 0; a && i < req->nevents; i++) {
        const uint8_t *p = req->events + i * CONTROL_EVENT_SIZE;
        uint16_t type, code;
        int32_t value;
        struct json_object *e = json_object_new_array();
        memcpy(&type, p, 2);
        memcpy(&code, p + 2, 2);
        memcpy(&value, p + 4, 4);
        if (!e || json_object_array_add(a, e)) {
            json_object_put(e);
            json_object_put(a);
            return NULL;
        }
        json_object_array_add(e, json_object_new_int(type));
        json_object_array_add(e, json_object_new_int(code));
        json_object_array_add(e, json_object_new_int(value));
    }
    return a;
}

struct json_object *control_request_to_json(const struct control_request *req)
{
    const struct cmd_spec *spec;
    struct json_object *o;
    unsigned f;
    int bad = 0;

    if ((unsigned)req->cmd >= CONTROL_CMD_COUNT)
        return NULL;
    spec = &cmd_specs[req->cmd];
    o = json_object_new_object();
    if (!o)
        return NULL;
    bad |= json_object_object_add(o, "cmd", json_object_new_string(spec->cmd));
    if (spec->op)
        bad |= json_object_object_add(o, "op", json_object_new_string(spec->op));
    for (f = 0; f < spec->nfields; f++) {
        const struct field_spec *fs = &spec->fields[f];
        struct json_object *v = NULL;

        switch (fs->kind) {
        case FIELD_INDEX: v = json_object_new_int64(req->index); break;
        case FIELD_SIZE: v = json_object_new_int64((int64_t)req->size); break;
        case FIELD_PATH: v = json_object_new_string(req->path); break;
        case FIELD_PLAN: v = json_object_new_string(req->plan); break;
        case FIELD_BYTES: v = json_object_new_int64((int64_t)req->size); break;
        case FIELD_FRAME:
            if (!req->frame_ns)
                continue;       /* optional and 0: left out of the canonical form */
            v = json_object_new_int64((int64_t)req->frame_ns);
            break;
        case FIELD_EVENTS:
            v = events_to_json(req);
            break;
        }
        bad |= json_object_object_add(o, fs->name, v);
    }
    if (bad) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static char *dup_json(struct json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
    return s ? strdup(s) : NULL;
}

/* {"ok":false,"error":"..."}, the bytes json-c writes for that object. Only the string
 * goes through json-c (its escaping): a whole object costs a hash table, and refusals
 * are most of what a hostile client gets back. */
char *control_error_response(const char *error)
{
    static const char head[] = "{\"ok\":false,\"error\":";
    struct json_object *str = json_object_new_string(error);
    const char *quoted;
    char *s = NULL;
    size_t qlen;

    if (!str)
        return NULL;
    quoted = json_object_to_json_string_length(str, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE, &qlen);
    if (quoted && (s = malloc(sizeof head - 1 + qlen + 2))) {
        memcpy(s, head, sizeof head - 1);
        memcpy(s + sizeof head - 1, quoted, qlen);
        memcpy(s + sizeof head - 1 + qlen, "}", 2);
    }
    json_object_put(str);
    return s;
}

static int run_request(const struct control_vm_ops *ops, void *vm,
                       const struct control_request *req, struct json_object *stats,
                       char *err, size_t errlen)
{
    switch (req->cmd) {
    case CONTROL_STOP:
        return ops->stop ? ops->stop(vm, err, errlen) : -ENOTSUP;
    case CONTROL_SUSPEND:
        return ops->suspend ? ops->suspend(vm, err, errlen) : -ENOTSUP;
    case CONTROL_RESUME:
        return ops->resume ? ops->resume(vm, err, errlen) : -ENOTSUP;
    case CONTROL_STATS:
        return ops->stats ? ops->stats(vm, stats, err, errlen) : -ENOTSUP;
    case CONTROL_DISK_RESIZE:
        return ops->disk_resize ? ops->disk_resize(vm, req->index, req->size, err, errlen)
                                : -ENOTSUP;
    case CONTROL_SNAPSHOT_TAKE:
        return ops->snapshot_take ? ops->snapshot_take(vm, req->path, err, errlen) : -ENOTSUP;
    case CONTROL_FAULT_INJECT:
        return ops->fault_inject ? ops->fault_inject(vm, req->index, req->plan, err, errlen)
                                 : -ENOTSUP;
    case CONTROL_TRACE_START:
        return ops->trace_start ? ops->trace_start(vm, req->path, err, errlen) : -ENOTSUP;
    case CONTROL_TRACE_STOP:
        return ops->trace_stop ? ops->trace_stop(vm, err, errlen) : -ENOTSUP;
    case CONTROL_INPUT:
        return ops->input ? ops->input(vm, req->index, req->events, req->nevents, req->frame_ns,
                                       err, errlen) : -ENOTSUP;
    case CONTROL_BALLOON:
        return ops->balloon ? ops->balloon(vm, req->size, err, errlen) : -ENOTSUP;
    case CONTROL_BALLOON_STATS:
        return ops->balloon_stats ? ops->balloon_stats(vm, stats, err, errlen) : -ENOTSUP;
    case CONTROL_CMD_COUNT:
        break;
    }
    return -EINVAL;
}

char *control_handle_message(const struct control_vm_ops *ops, void *vm,
                             const char *msg, size_t len)
{
    /* 8 KiB: kept off the vCPU thread's stack, and not allocated per message (under ASan,
     * this malloc and its fill were a quarter of the control fuzz target's time). One per
     * thread; the handler never re-enters itself. */
    static _Thread_local struct control_request req_buf;
    struct control_request *req = &req_buf;
    struct json_object *resp = NULL, *stats = NULL;
    char err[512] = "";
    char *out = NULL;
    int rc;

    if (control_request_parse(msg, len, req, err, sizeof err) < 0) {
        out = control_error_response(err);
        goto done;
    }
    if (req->cmd == CONTROL_STATS || req->cmd == CONTROL_BALLOON_STATS) {
        stats = json_object_new_object();
        if (!stats)
            goto done;
    }
    rc = run_request(ops, vm, req, stats, err, sizeof err);
    if (ops->record) {
        struct json_object *canon = control_request_to_json(req);

        if (canon) {
            ops->record(vm, json_object_to_json_string_ext(canon, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE),
                        rc);
            json_object_put(canon);
        }
    }
    if (rc < 0) {
        if (rc == -ENOTSUP && !err[0])
            snprintf(err, sizeof err, "command \"%s\" is not supported by this VM",
                     control_cmd_name(req->cmd));
        else if (!err[0])
            snprintf(err, sizeof err, "%s: %s", control_cmd_name(req->cmd), strerror(-rc));
        out = control_error_response(err);
        goto done;
    }
    resp = json_object_new_object();
    if (!resp || json_object_object_add(resp, "ok", json_object_new_boolean(1)) < 0)
        goto done;
    if (stats) {
        if (json_object_object_add(resp, req->cmd == CONTROL_STATS ? "stats" : "balloon",
                                   stats) < 0)
            goto done;
        stats = NULL;
    }
    out = dup_json(resp);
done:
    json_object_put(stats);
    json_object_put(resp);
    return out;
}

int control_stats_fill(struct json_object *out, const char *state, const struct vm_stats *st)
{
    struct json_object *exits;
    unsigned k;
    int bad = 0;

    exits = json_object_new_object();
    if (!exits)
        return -ENOMEM;
    for (k = 0; k < EXIT_KIND_COUNT; k++)
        bad |= json_object_object_add(exits, exit_kind_names[k],
                                      json_object_new_uint64(st->exits[k]));
    bad |= json_object_object_add(out, "state", json_object_new_string(state));
    bad |= json_object_object_add(out, "virtual_ns", json_object_new_uint64(st->virtual_ns));
    bad |= json_object_object_add(out, "insns", json_object_new_uint64(st->insns));
    bad |= json_object_object_add(out, "exits", exits);
    return bad ? -ENOMEM : 0;
}
