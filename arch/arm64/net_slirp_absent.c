/* `--net user` in an arm64 build: absent. libslirp runs in the helper vmlab-slirp, which is
 * not cross-built (it links Debian's shared libslirp and glib: arch/arm64/arm64.mk). */
#include <errno.h>
#include <stdio.h>

#include "devices/net/net_backend.h"

int net_slirp_create(const char *args, const struct device_env *env, struct net_backend **out,
                     char *err, size_t errlen)
{
    (void)args;
    (void)env;
    *out = NULL;
    snprintf(err, errlen, "net=user: user-mode networking (libslirp) is not part of this arm64 "
             "build: use net=tap or tapfd=");
    return -ENOTSUP;
}
