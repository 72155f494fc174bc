/* Just enough of the i8042 keyboard controller for a guest to reset the machine: a write of
 * 0xfe (pulse reset line) to the command port ends the run cleanly. Linux without ACPI
 * powers off or reboots this way (reboot=k), as under Firecracker. Its ports are 0x60 and
 * 0x64 only: 0x61 between them is system control port B, the PIT's (devices/i8254.c). */
#include "device.h"

#include <errno.h>
#include <stdlib.h>

#define I8042_DATA     0x0      /* port 0x60 */
#define I8042_COMMAND  0x4      /* port 0x64: status on read */
#define I8042_CMD_RESET 0xfe

struct i8042 {
    void (*request_exit)(void *opaque, int status);
    void *opaque;
};

static int i8042_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    (void)opaque;
    (void)off;
    (void)size;
    *value = 0;         /* no data, input buffer empty: the guest never waits on us */
    return 0;
}

static int i8042_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct i8042 *k = opaque;

    (void)size;
    if (off == I8042_COMMAND && (value & 0xff) == I8042_CMD_RESET && k->request_exit)
        k->request_exit(k->opaque, 0);
    return 0;
}

static const struct bus_ops i8042_ops = { i8042_read, i8042_write };

static int i8042_create(const char *args, const struct device_env *env, void **state,
                        char *err, size_t errlen)
{
    static const char *const allowed[] = { "id", NULL };
    int rc = device_args_check(args, allowed, err, errlen);
    struct i8042 *k;

    if (rc)
        return rc;
    k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->request_exit = env->request_exit;
    k->opaque = env->request_exit_opaque;
    *state = k;
    return 0;
}

static const struct device_window i8042_windows[] = {
    { I8042_DATA, 1 }, { I8042_COMMAND, 1 },
};

const struct device_type i8042_type = {
    .kind = "i8042",
    .space = BUS_PIO,
    .window_size = 1,
    .windows = i8042_windows,
    .nwindows = 2,
    .create = i8042_create,
    .ops = &i8042_ops,
    .destroy = free,
    .save = device_save_stateless,
    .load = device_load_stateless,
};
