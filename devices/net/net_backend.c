/* Picks the backend a virtio-net device's args name. */
#include "devices/net/net_backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int net_backend_create(const char *args, const struct device_env *env,
                       const struct net_port *port, struct net_backend **out,
                       char *err, size_t errlen)
{
    char net[DEVICE_ARGS_MAX] = "none", v[DEVICE_ARGS_MAX];
    int has_tap = device_arg_get(args, "tap", v, sizeof(v)) == 1 ||
                  device_arg_get(args, "tapfd", v, sizeof(v)) == 1;
    int rc;

    *out = NULL;
    if (device_arg_get(args, "net", net, sizeof(net)) < 0) {
        snprintf(err, errlen, "virtio-net: net= is too long");
        return -EINVAL;
    }
    if (has_tap && device_arg_get(args, "net", v, sizeof(v)) == 1) {
        snprintf(err, errlen, "virtio-net: net=%s and a tap cannot be combined", net);
        return -EINVAL;
    }
    if (has_tap)
        rc = net_tap_create(args, env, out, err, errlen);
    else if (!strcmp(net, "none"))
        rc = net_none_create(args, env, out, err, errlen);
    else if (!strcmp(net, "loop"))
        rc = net_loop_create(args, env, out, err, errlen);
    else if (!strcmp(net, "user"))
        rc = net_slirp_create(args, env, out, err, errlen);
    else {
        snprintf(err, errlen, "virtio-net: net=%s is not one of none, loop, user", net);
        return -EINVAL;
    }
    if (rc)
        return rc;
    (*out)->port = *port;
    return 0;
}
