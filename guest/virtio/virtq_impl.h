/* Ring-format back ends behind virtq_add/kick/get_used (split.c, packed.c). */
#ifndef GUEST_VIRTQ_IMPL_H
#define GUEST_VIRTQ_IMPL_H

#include "virtio.h"

int split_init(struct virtq *q);
int split_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n);
int split_publish(struct virtq *q);     /* returns 1 if the device wants a notify */
int split_get_used(struct virtq *q, uint16_t *id, uint32_t *len);

int packed_init(struct virtq *q);
int packed_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n);
int packed_publish(struct virtq *q);
int packed_get_used(struct virtq *q, uint16_t *id, uint32_t *len);

/* Aborts the program: the device broke the ring protocol. */
_Noreturn void virtq_bad_device(struct virtq *q, const char *what, unsigned value);

#endif
