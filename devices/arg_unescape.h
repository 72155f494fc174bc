/* Decodes the escapes a device argument may carry (arguments are comma-separated, so a
 * comma is written \x2c): \n \r \t \\ \xHH. Returns the decoded length or -EINVAL. */
#ifndef VMLAB_ARG_UNESCAPE_H
#define VMLAB_ARG_UNESCAPE_H

#include <stddef.h>

int arg_unescape(const char *in, char *out, size_t outlen);

#endif
