/* Every device type linked into vmlab. Explicit, so a static link keeps them all and the
 * lookup order is fixed. */
#include "device.h"

#include <string.h>

extern const struct device_type uart8250_type;
extern const struct device_type debug_exit_type;
extern const struct device_type i8042_type;
extern const struct device_type i8254_type;
extern const struct device_type virtio_blk_type;
extern const struct device_type virtio_console_type;
extern const struct device_type virtio_rng_type;
extern const struct device_type virtio_net_type;
extern const struct device_type virtio_vsock_type;
extern const struct device_type virtio_input_type;
extern const struct device_type virtio_balloon_type;
extern const struct device_type cmos_rtc_type;

static const struct device_type *const registry[] = {
    &uart8250_type,
    &debug_exit_type,
    &i8042_type,
    &i8254_type,
    &virtio_blk_type,
    &virtio_console_type,
    &virtio_rng_type,
    &virtio_net_type,
    &virtio_vsock_type,
    &virtio_input_type,
    &virtio_balloon_type,
    &cmos_rtc_type,
};

const struct device_type *device_type_at(unsigned index)
{
    return index < sizeof(registry) / sizeof(registry[0]) ? registry[index] : NULL;
}

const struct device_type *device_type_find(const char *kind)
{
    for (unsigned i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (strcmp(registry[i]->kind, kind) == 0)
            return registry[i];
    return NULL;
}
