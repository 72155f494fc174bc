/* `vmlab vm create-partition`: empty partition images for the VM manager's composite
 * disks, as AVF's `vm create-partition` makes them. */
#ifndef VMLAB_VM_PARTITION_H
#define VMLAB_VM_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* AVF's instance image header: this magic, then the version as a little-endian u16. */
#define VM_INSTANCE_MAGIC "Android-VM-instance"
#define VM_INSTANCE_VERSION 1

enum vm_partition_type { VM_PARTITION_RAW, VM_PARTITION_INSTANCE };

/* Creates `path` (refusing an existing file) as a sparse file of `size` bytes; an
 * instance image starts with the header. 0 or -errno with err naming the value. */
int vm_partition_create(const char *path, uint64_t size, enum vm_partition_type type,
                        char *err, size_t errlen);

#endif
