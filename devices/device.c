#include "device.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int device_create(struct device *dev, const char *kind, const char *args,
                  const struct device_env *env, struct bus *bus, char *err, size_t errlen)
{
    const struct device_type *t = device_type_find(kind);
    int rc;

    memset(dev, 0, sizeof(*dev));
    if (!t) {
        snprintf(err, errlen, "device kind '%s' is unknown", kind);
        return -EINVAL;
    }
    if (strlen(args) >= sizeof(dev->args)) {
        snprintf(err, errlen, "%s: argument string is longer than %zu bytes", kind,
                 sizeof(dev->args) - 1);
        return -EINVAL;
    }
    rc = t->create(args, env, &dev->state, err, errlen);
    if (rc)
        return rc;
    dev->type = t;
    snprintf(dev->kind, sizeof(dev->kind), "%s", kind);
    snprintf(dev->args, sizeof(dev->args), "%s", args);
    dev->base = env->base;
    dev->irq = (int)env->irq.gsi;
    if (device_arg_get(args, "id", dev->name, sizeof(dev->name)) != 1)
        snprintf(dev->name, sizeof(dev->name), "%s@%llx", kind, (unsigned long long)env->base);
    if (bus) {
        struct device_window own[DEVICE_MAX_WINDOWS];
        const struct device_window *w = env->windows;
        unsigned n = env->nwindows;
        if (!w) {
            n = device_type_windows(t, own);
            w = own;
        }
        for (unsigned i = 0; i < n; i++) {
            rc = bus_register_window(bus, env->base + w[i].offset, w[i].size, w[i].offset,
                                     t->ops, dev->state, dev->name);
            if (rc < 0) {
                snprintf(err, errlen, "%s: window %#llx+%#llx overlaps another device", kind,
                         (unsigned long long)(env->base + w[i].offset),
                         (unsigned long long)w[i].size);
                while (i-- > 0)
                    bus_unregister(bus, env->base + w[i].offset);
                t->destroy(dev->state);
                memset(dev, 0, sizeof(*dev));
                return rc;
            }
        }
    }
    return 0;
}

unsigned device_type_windows(const struct device_type *t,
                             struct device_window out[DEVICE_MAX_WINDOWS])
{
    if (!t->windows || !t->nwindows) {
        out[0] = (struct device_window){ 0, t->window_size };
        return 1;
    }
    unsigned n = t->nwindows < DEVICE_MAX_WINDOWS ? t->nwindows : DEVICE_MAX_WINDOWS;
    memcpy(out, t->windows, n * sizeof(out[0]));
    return n;
}

void device_destroy(struct device *dev)
{
    if (dev->type && dev->type->destroy)
        dev->type->destroy(dev->state);
    memset(dev, 0, sizeof(*dev));
}

/* Walks "k=v,flag,k2=v2": calls fn for each item with key and value spans. */
static int args_each(const char *args, int (*fn)(void *ctx, const char *key, size_t klen,
                                                   const char *val, size_t vlen),
                     void *ctx)
{
    const char *p = args ? args : "";

    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        const char *val = eq ? eq + 1 : p + len;
        size_t vlen = eq ? len - klen - 1 : 0;
        if (len) {
            int rc = fn(ctx, p, klen, val, vlen);
            if (rc)
                return rc;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

struct get_ctx { const char *key; char *out; size_t outlen; int found; int has_value; };

static int get_cb(void *vctx, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct get_ctx *c = vctx;

    if (strlen(c->key) != klen || strncmp(c->key, key, klen) != 0)
        return 0;
    c->found = 1;
    c->has_value = val != key + klen;
    if (c->out) {
        if (vlen >= c->outlen)
            return -EINVAL;
        memcpy(c->out, val, vlen);
        c->out[vlen] = '\0';
    }
    return 1;
}

int device_arg_get(const char *args, const char *key, char *out, size_t outlen)
{
    struct get_ctx c = { key, out, outlen, 0, 0 };
    int rc = args_each(args, get_cb, &c);

    if (rc < 0)
        return rc;
    return c.found;
}

int device_arg_flag(const char *args, const char *flag)
{
    char v[8];
    int rc = device_arg_get(args, flag, v, sizeof(v));

    if (rc != 1)
        return 0;
    return v[0] == '\0' || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1");
}

struct check_ctx { const char *const *allowed; char *err; size_t errlen; };

static int check_cb(void *vctx, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct check_ctx *c = vctx;

    (void)val;
    (void)vlen;
    for (const char *const *a = c->allowed; *a; a++)
        if (strlen(*a) == klen && strncmp(*a, key, klen) == 0)
            return 0;
    snprintf(c->err, c->errlen, "unknown option '%.*s'", (int)klen, key);
    return -EINVAL;
}

int device_args_check(const char *args, const char *const *allowed, char *err, size_t errlen)
{
    struct check_ctx c = { allowed, err, errlen };
    return args_each(args, check_cb, &c);
}

int device_save_stateless(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    (void)state;
    (void)w;
    (void)err;
    (void)errlen;
    return 0;
}

int device_load_stateless(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    (void)state;
    (void)r;
    (void)err;
    (void)errlen;
    return 0;
}
