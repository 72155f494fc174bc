/* The exit device, compatible with QEMU's isa-debug-exit: a write of v ends the run with
 * exit status (v << 1) | 1, so the same guest exits the same way under QEMU and vmlab. */
#include "device.h"

#include <errno.h>
#include <stdlib.h>

struct debug_exit {
    void (*request_exit)(void *opaque, int status);
    void *opaque;
};

static int debug_exit_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    (void)opaque;
    (void)off;
    (void)size;
    *value = 0;
    return 0;
}

static int debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct debug_exit *d = opaque;

    (void)off;
    (void)size;
    /* Process exit statuses are 8 bits wide, as with QEMU. */
    if (d->request_exit)
        d->request_exit(d->opaque, (int)(((value << 1) | 1) & 0xff));
    return 0;
}

static const struct bus_ops debug_exit_ops = { debug_exit_read, debug_exit_write };

static int debug_exit_create(const char *args, const struct device_env *env, void **state,
                             char *err, size_t errlen)
{
    static const char *const allowed[] = { "id", NULL };
    int rc = device_args_check(args, allowed, err, errlen);
    struct debug_exit *d;

    if (rc)
        return rc;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->request_exit = env->request_exit;
    d->opaque = env->request_exit_opaque;
    *state = d;
    return 0;
}

const struct device_type debug_exit_type = {
    .kind = "debug-exit",
    .space = BUS_PIO,
    .window_size = 4,
    .create = debug_exit_create,
    .ops = &debug_exit_ops,
    .destroy = free,
    .save = device_save_stateless,
    .load = device_load_stateless,
};
