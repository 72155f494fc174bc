/* virtio-rng / entropy device (§5.4). Kind "virtio-rng", no args. Bytes come from the
 * seeded PRNG (vmm/prng.h) with env->seed: the same seed and the same requests give the
 * same bytes. At most VIRTIO_RNG_REQ_MAX bytes are supplied per request. */
#ifndef VMLAB_VIRTIO_RNG_H
#define VMLAB_VIRTIO_RNG_H

#include "devices/device.h"

extern const struct device_type virtio_rng_type;

#define VIRTIO_RNG_REQ_MAX (64u * 1024)

#endif
