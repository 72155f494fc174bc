#ifndef VMLAB_CDISK_WIRE_H
#define VMLAB_CDISK_WIRE_H
#include <stddef.h>
#include <stdint.h>
/* Checks the protobuf wire structure of a CompositeDisk message (buf = bytes after the
 * magic; base = their offset in the file, for messages). 0 or -EINVAL with err set. */
int cdisk_wire_check(const uint8_t *buf, size_t len, size_t base, char *err, size_t errlen);
#endif
