/* Fuzz target: the packed virtqueue (devices/virtio/vq_packed.c), device side. Input format
 * and invariants: fuzz/vq_common.h. */
#include "fuzz/vq_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return vqf_run(data, size, 1);
}
