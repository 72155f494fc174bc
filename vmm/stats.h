/* Counters every run keeps, printed by --stats and returned by the control socket. */
#ifndef VMLAB_STATS_H
#define VMLAB_STATS_H

#include <stdint.h>

enum exit_kind {
    EXIT_MMIO_READ,
    EXIT_MMIO_WRITE,
    EXIT_PIO_IN,
    EXIT_PIO_OUT,
    EXIT_HLT,
    EXIT_IRQ,          /* interrupts delivered to the guest */
    EXIT_RDTSC,
    EXIT_KIND_COUNT
};

extern const char *const exit_kind_names[EXIT_KIND_COUNT];

struct vm_stats {
    uint64_t insns;                     /* instructions retired (software CPU) */
    uint64_t virtual_ns;                /* virtual time at the end of the run */
    uint64_t exits[EXIT_KIND_COUNT];
};

#endif
