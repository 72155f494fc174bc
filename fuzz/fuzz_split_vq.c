/* Fuzz target: the split virtqueue (devices/virtio/vq_split.c), device side. Input format
 * and invariants: fuzz/vq_common.h. */
#include "fuzz/vq_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return vqf_run(data, size, 0);
}
