/* The software CPU in an arm64 build: absent. Unicorn's engine here runs x86_64 guests only
 * (and Debian's unicorn cannot run arm64 guests past MMU enable, issue 22), so `--cpu sim`
 * is refused with this reason and `--cpu auto` never falls back to it. */
#include <errno.h>
#include <stdio.h>

#include "vmm/cpu_backend.h"

static int sim_absent_probe(char *why, unsigned whylen)
{
    if (why && whylen)
        snprintf(why, whylen, "the software CPU (x86_64 unicorn) is not part of this arm64 "
                 "build: use --cpu kvm");
    return -ENOTSUP;
}

static int sim_absent_create(const struct cpu_env *env, struct cpu **out)
{
    (void)env;
    *out = NULL;
    return -ENOTSUP;
}

const struct cpu_backend_ops sim_cpu_backend = {
    .name = "sim",
    .probe = sim_absent_probe,
    .create = sim_absent_create,
};
