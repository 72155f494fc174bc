#include "stats.h"

const char *const exit_kind_names[EXIT_KIND_COUNT] = {
    [EXIT_MMIO_READ] = "mmio_read",
    [EXIT_MMIO_WRITE] = "mmio_write",
    [EXIT_PIO_IN] = "pio_in",
    [EXIT_PIO_OUT] = "pio_out",
    [EXIT_HLT] = "hlt",
    [EXIT_IRQ] = "irq",
    [EXIT_RDTSC] = "rdtsc",
};
