#ifndef VMLAB_SLIRP_SANDBOX_H
#define VMLAB_SLIRP_SANDBOX_H

#include <stddef.h>

/* Loads the helper's seccomp allow-list (no_new_privs first). 0 or -errno, err filled. */
int slirp_sandbox_enter(char *err, size_t errlen);
/* How many system calls the list allows. */
unsigned slirp_sandbox_allowed_count(void);

#endif
