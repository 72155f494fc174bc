#include "virtmgr_config.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vmcfg_init(struct vm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->cpus = 1;
    c->sandbox = 1;
    c->console.fd = c->log.fd = -1;
    for (unsigned i = 0; i < VMCFG_MAX_DISKS; i++) {
        c->disks[i].image.fd = -1;
        for (unsigned k = 0; k < VMCFG_MAX_PARTS; k++)
            c->disks[i].parts[k].file.fd = -1;
    }
}

int vmcfg_set(char **dst, const char *s)
{
    char *d = strdup(s);
    if (!d)
        return -ENOMEM;
    free(*dst);
    *dst = d;
    return 0;
}

static const char *type_name(struct json_object *v)
{
    return json_type_to_name(json_object_get_type(v));
}

/* The one shape of every "wrong value" message. */
static int bad(char *err, size_t errlen, const char *path, const char *want,
               struct json_object *v)
{
    const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    snprintf(err, errlen, "config: %s: expected %s, got %s %.60s", path, want, type_name(v),
             text);
    return -EINVAL;
}

static int get_string(struct json_object *v, const char *path, char **out, char *err,
                      size_t errlen)
{
    if (!json_object_is_type(v, json_type_string))
        return bad(err, errlen, path, "a string", v);
    const char *s = json_object_get_string(v);
    if (!*s || strlen(s) != (size_t)json_object_get_string_len(v))
        return bad(err, errlen, path, "a non-empty string without NUL bytes", v);
    return vmcfg_set(out, s);
}

static int get_u64(struct json_object *v, const char *path, uint64_t min, uint64_t max,
                   uint64_t *out, char *err, size_t errlen)
{
    char want[80];
    snprintf(want, sizeof(want), "an integer in %llu..%llu", (unsigned long long)min,
             (unsigned long long)max);
    if (!json_object_is_type(v, json_type_int))
        return bad(err, errlen, path, want, v);
    errno = 0;
    int64_t i = json_object_get_int64(v);
    uint64_t u = json_object_get_uint64(v);
    if (i < 0 || errno || u < min || u > max)
        return bad(err, errlen, path, want, v);
    *out = u;
    return 0;
}

static int get_bool(struct json_object *v, const char *path, int *out, char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_boolean))
        return bad(err, errlen, path, "true or false", v);
    *out = json_object_get_boolean(v);
    return 0;
}

static int get_fd(struct json_object *v, const char *path, struct vmcfg_file *f, char *err,
                  size_t errlen)
{
    uint64_t i;
    int r = get_u64(v, path, 0, 15, &i, err, errlen);
    if (!r)
        f->fd = (int)i;
    return r;
}

static int unknown(char *err, size_t errlen, const char *path)
{
    snprintf(err, errlen, "config: %s: unknown key", path);
    return -EINVAL;
}

/* "prefix.key" and "prefix[i]": the key paths errors name (cut at the buffer's end). */
static void key_path(char *buf, size_t n, const char *prefix, const char *key)
{
    if (snprintf(buf, n, "%s.%s", prefix, key) >= (int)n)
        buf[n - 1] = '\0';
}

static void index_path(char *buf, size_t n, const char *prefix, size_t i)
{
    if (snprintf(buf, n, "%s[%zu]", prefix, i) >= (int)n)
        buf[n - 1] = '\0';
}

static int parse_partition(struct json_object *o, enum vmcfg_form form, const char *prefix,
                           struct vmcfg_partition *p, char *err, size_t errlen)
{
    char path[256];
    int r = 0;

    if (!json_object_is_type(o, json_type_object))
        return bad(err, errlen, prefix, "an object", o);
    json_object_object_foreach(o, key, v) {
        key_path(path, sizeof(path), prefix, key);
        if (!strcmp(key, "label"))
            r = get_string(v, path, &p->label, err, errlen);
        else if (!strcmp(key, "writable"))
            r = get_bool(v, path, &p->writable, err, errlen);
        else if (form == VMCFG_FILE && !strcmp(key, "path"))
            r = get_string(v, path, &p->file.path, err, errlen);
        else if (form == VMCFG_WIRE && !strcmp(key, "fd"))
            r = get_fd(v, path, &p->file, err, errlen);
        else
            r = unknown(err, errlen, path);
        if (r)
            return r;
    }
    if (!p->label) {
        snprintf(err, errlen, "config: %s: missing \"label\"", prefix);
        return -EINVAL;
    }
    if (!p->file.path && p->file.fd < 0) {
        snprintf(err, errlen, "config: %s: missing \"%s\"", prefix,
                 form == VMCFG_FILE ? "path" : "fd");
        return -EINVAL;
    }
    return 0;
}

static int parse_disk(struct json_object *o, enum vmcfg_form form, const char *prefix,
                      struct vmcfg_disk *d, char *err, size_t errlen)
{
    char path[256];
    int r = 0;

    if (!json_object_is_type(o, json_type_object))
        return bad(err, errlen, prefix, "an object", o);
    json_object_object_foreach(o, key, v) {
        key_path(path, sizeof(path), prefix, key);
        if (!strcmp(key, "writable")) {
            r = get_bool(v, path, &d->writable, err, errlen);
        } else if (form == VMCFG_FILE && !strcmp(key, "image")) {
            r = get_string(v, path, &d->image.path, err, errlen);
        } else if (form == VMCFG_WIRE && !strcmp(key, "image_fd")) {
            r = get_fd(v, path, &d->image, err, errlen);
        } else if (!strcmp(key, "partitions")) {
            if (!json_object_is_type(v, json_type_array))
                return bad(err, errlen, path, "an array", v);
            size_t n = json_object_array_length(v);
            if (n == 0 || n > VMCFG_MAX_PARTS) {
                snprintf(err, errlen, "config: %s: %zu partitions, expected 1 to %d", path, n,
                         VMCFG_MAX_PARTS);
                return -EINVAL;
            }
            for (size_t i = 0; i < n && !r; i++) {
                char ppath[256];
                index_path(ppath, sizeof(ppath), path, i);
                r = parse_partition(json_object_array_get_idx(v, i), form, ppath,
                                    &d->parts[d->nparts++], err, errlen);
            }
        } else {
            r = unknown(err, errlen, path);
        }
        if (r)
            return r;
    }
    int has_image = d->image.path || d->image.fd >= 0;
    if (has_image == (d->nparts > 0)) {
        snprintf(err, errlen, "config: %s: needs exactly one of \"%s\" and \"partitions\"",
                 prefix, form == VMCFG_FILE ? "image" : "image_fd");
        return -EINVAL;
    }
    return 0;
}

static int parse_string_array(struct json_object *v, const char *path, char **out,
                              unsigned max, unsigned *n, char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_array))
        return bad(err, errlen, path, "an array of strings", v);
    size_t len = json_object_array_length(v);
    if (len > max) {
        snprintf(err, errlen, "config: %s: %zu entries, at most %u", path, len, max);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        char ipath[256];
        index_path(ipath, sizeof(ipath), path, i);
        int r = get_string(json_object_array_get_idx(v, i), ipath, &out[(*n)++], err, errlen);
        if (r)
            return r;
    }
    return 0;
}

int vmcfg_parse(struct json_object *o, enum vmcfg_form form, struct vm_config *c, char *err,
                size_t errlen)
{
    int r = 0;

    if (!json_object_is_type(o, json_type_object))
        return bad(err, errlen, "(top level)", "an object", o);
    json_object_object_foreach(o, key, v) {
        const char *path = key;
        if (!strcmp(key, "name")) {
            r = get_string(v, path, &c->name, err, errlen);
        } else if (!strcmp(key, "kernel")) {
            r = get_string(v, path, &c->kernel, err, errlen);
        } else if (!strcmp(key, "program")) {
            r = get_string(v, path, &c->program, err, errlen);
        } else if (!strcmp(key, "initrd")) {
            r = get_string(v, path, &c->initrd, err, errlen);
        } else if (!strcmp(key, "params")) {
            r = get_string(v, path, &c->params, err, errlen);
        } else if (!strcmp(key, "args")) {
            r = parse_string_array(v, path, c->args, VMCFG_MAX_ARGS, &c->nargs, err, errlen);
        } else if (!strcmp(key, "memory_mib")) {
            r = get_u64(v, path, 2, 1u << 20, &c->memory_mib, err, errlen);
        } else if (!strcmp(key, "cpus")) {
            uint64_t n;
            r = get_u64(v, path, 1, 1, &n, err, errlen);    /* vmlab run has one vCPU */
            if (!r)
                c->cpus = (unsigned)n;
        } else if (!strcmp(key, "cpu")) {
            r = get_string(v, path, &c->cpu, err, errlen);
            if (!r && strcmp(c->cpu, "sim") && strcmp(c->cpu, "kvm")) {
                snprintf(err, errlen, "config: cpu: '%s' is not one of sim, kvm", c->cpu);
                r = -EINVAL;
            }
        } else if (!strcmp(key, "debug")) {
            char *s = NULL;
            r = get_string(v, path, &s, err, errlen);
            if (!r && strcmp(s, "full") && strcmp(s, "none")) {
                snprintf(err, errlen, "config: debug: '%s' is not one of full, none", s);
                r = -EINVAL;
            }
            if (!r)
                c->debug = strcmp(s, "full") ? VMCFG_DEBUG_NONE : VMCFG_DEBUG_FULL;
            free(s);
        } else if (!strcmp(key, "devices")) {
            char *names[4] = { 0 };
            unsigned n = 0;
            r = parse_string_array(v, path, names, 4, &n, err, errlen);
            for (unsigned i = 0; i < n; i++) {
                if (!r && strcmp(names[i], "rng")) {
                    snprintf(err, errlen, "config: devices[%u]: '%s' is not a device this "
                             "manager adds (known: rng)", i, names[i]);
                    r = -EINVAL;
                }
                if (!r)
                    c->rng = 1;
                free(names[i]);
            }
        } else if (!strcmp(key, "sandbox")) {
            r = get_bool(v, path, &c->sandbox, err, errlen);
        } else if (!strcmp(key, "max_insns")) {
            r = get_u64(v, path, 1, UINT64_MAX >> 1, &c->max_insns, err, errlen);
        } else if (!strcmp(key, "disks")) {
            if (!json_object_is_type(v, json_type_array))
                return bad(err, errlen, path, "an array", v);
            size_t n = json_object_array_length(v);
            if (n > VMCFG_MAX_DISKS) {
                snprintf(err, errlen, "config: disks: %zu disks, at most %d", n,
                         VMCFG_MAX_DISKS);
                return -EINVAL;
            }
            for (size_t i = 0; i < n && !r; i++) {
                char dpath[64];
                index_path(dpath, sizeof(dpath), "disks", i);
                r = parse_disk(json_object_array_get_idx(v, i), form, dpath,
                               &c->disks[c->ndisks++], err, errlen);
            }
        } else if (form == VMCFG_WIRE && !strcmp(key, "console_fd")) {
            r = get_fd(v, path, &c->console, err, errlen);
        } else if (form == VMCFG_WIRE && !strcmp(key, "log_fd")) {
            r = get_fd(v, path, &c->log, err, errlen);
        } else {
            r = unknown(err, errlen, path);
        }
        if (r)
            return r;
    }
    if (!!c->kernel == !!c->program) {
        snprintf(err, errlen, "config: needs exactly one of \"kernel\" and \"program\"");
        return -EINVAL;
    }
    if (c->kernel && c->nargs) {
        snprintf(err, errlen, "config: args: only a \"program\" takes arguments "
                 "(a kernel takes \"params\")");
        return -EINVAL;
    }
    if (c->program && (c->initrd || c->params)) {
        snprintf(err, errlen, "config: %s: only a \"kernel\" takes it",
                 c->initrd ? "initrd" : "params");
        return -EINVAL;
    }
    return 0;
}

int vmcfg_load(const char *path, struct vm_config *c, char *err, size_t errlen)
{
    struct json_object *o = json_object_from_file(path);
    if (!o) {
        snprintf(err, errlen, "%s: not a readable JSON file (%s)", path,
                 json_util_get_last_err() ? json_util_get_last_err() : "unknown error");
        err[strcspn(err, "\n")] = '\0';
        return -EINVAL;
    }
    int r = vmcfg_parse(o, VMCFG_FILE, c, err, errlen);
    json_object_put(o);
    if (r) {
        /* "config: KEY..." becomes "FILE: KEY..." so the user sees which file. */
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%s:%s", path, err + (strncmp(err, "config:", 7) ? 0 : 7));
        snprintf(err, errlen, "%s", tmp);
    }
    return r;
}

static void put_file(struct json_object *o, const char *path_key, const char *fd_key,
                     const struct vmcfg_file *f, enum vmcfg_form form)
{
    if (form == VMCFG_FILE && f->path)
        json_object_object_add(o, path_key, json_object_new_string(f->path));
    if (form == VMCFG_WIRE && f->fd >= 0)
        json_object_object_add(o, fd_key, json_object_new_int(f->fd));
}

static void put_str(struct json_object *o, const char *key, const char *s)
{
    if (s)
        json_object_object_add(o, key, json_object_new_string(s));
}

struct json_object *vmcfg_to_json(const struct vm_config *c, enum vmcfg_form form)
{
    struct json_object *o = json_object_new_object();

    put_str(o, "name", c->name);
    put_str(o, "kernel", c->kernel);
    put_str(o, "program", c->program);
    put_str(o, "initrd", c->initrd);
    put_str(o, "params", c->params);
    if (c->nargs) {
        struct json_object *a = json_object_new_array();
        for (unsigned i = 0; i < c->nargs; i++)
            json_object_array_add(a, json_object_new_string(c->args[i]));
        json_object_object_add(o, "args", a);
    }
    if (c->memory_mib)
        json_object_object_add(o, "memory_mib", json_object_new_uint64(c->memory_mib));
    json_object_object_add(o, "cpus", json_object_new_int((int)c->cpus));
    put_str(o, "cpu", c->cpu);
    put_str(o, "debug", c->debug == VMCFG_DEBUG_NONE ? "none" : "full");
    if (c->rng) {
        struct json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_new_string("rng"));
        json_object_object_add(o, "devices", a);
    }
    if (c->max_insns)
        json_object_object_add(o, "max_insns", json_object_new_uint64(c->max_insns));
    json_object_object_add(o, "sandbox", json_object_new_boolean(c->sandbox));
    if (c->ndisks) {
        struct json_object *disks = json_object_new_array();
        for (unsigned i = 0; i < c->ndisks; i++) {
            const struct vmcfg_disk *d = &c->disks[i];
            struct json_object *dj = json_object_new_object();
            put_file(dj, "image", "image_fd", &d->image, form);
            if (d->nparts) {
                struct json_object *parts = json_object_new_array();
                for (unsigned k = 0; k < d->nparts; k++) {
                    struct json_object *pj = json_object_new_object();
                    put_str(pj, "label", d->parts[k].label);
                    put_file(pj, "path", "fd", &d->parts[k].file, form);
                    json_object_object_add(pj, "writable",
                                           json_object_new_boolean(d->parts[k].writable));
                    json_object_array_add(parts, pj);
                }
                json_object_object_add(dj, "partitions", parts);
            }
            json_object_object_add(dj, "writable", json_object_new_boolean(d->writable));
            json_object_array_add(disks, dj);
        }
        json_object_object_add(o, "disks", disks);
    }
    if (form == VMCFG_WIRE) {
        put_file(o, NULL, "console_fd", &c->console, form);
        put_file(o, NULL, "log_fd", &c->log, form);
    }
    return o;
}

void vmcfg_free(struct vm_config *c)
{
    free(c->name);
    free(c->kernel);
    free(c->program);
    free(c->initrd);
    free(c->params);
    free(c->cpu);
    for (unsigned i = 0; i < c->nargs; i++)
        free(c->args[i]);
    for (unsigned i = 0; i < c->ndisks; i++) {
        free(c->disks[i].image.path);
        for (unsigned k = 0; k < c->disks[i].nparts; k++) {
            free(c->disks[i].parts[k].label);
            free(c->disks[i].parts[k].file.path);
        }
    }
    free(c->console.path);
    free(c->log.path);
    vmcfg_init(c);
}
