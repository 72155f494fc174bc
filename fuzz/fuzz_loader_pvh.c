/* Fuzz target: the PVH ELF loader (vmm/loader_pvh.c): the input is a guest image loaded into
 * guest RAM of exactly RAM_SIZE bytes (a global array, so ASan sees any host access past it).
 * Invariants (abort() on violation): loader_pvh_load returns 0, or -ENOEXEC / -ERANGE with a
 * reason; on success the loaded range is non-empty and inside RAM, and loading the same
 * image again gives the same entry and range (no hidden state); the start-info block can be
 * written after any successful load. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/loader_pvh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (4u << 20)

static uint8_t ram[RAM_SIZE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct guest_mem mem;
    struct pvh_image a, b;
    char err[512];
    uint64_t si;

    guest_mem_init_buffer(&mem, ram, RAM_SIZE);
    err[0] = 0;
    int r = loader_pvh_load(&mem, data, size, &a, err, sizeof err);
    if (r != 0 && r != -ENOEXEC && r != -ERANGE)
        abort();
    if (r < 0 && !err[0])
        abort();    /* a refusal names its reason */
    if (r == 0) {
        if (a.load_start >= a.load_end || a.load_end > RAM_SIZE)
            abort();
        if (loader_pvh_load(&mem, data, size, &b, err, sizeof err) ||
            a.entry != b.entry || a.load_start != b.load_start || a.load_end != b.load_end)
            abort();    /* the same image loaded differently */
        if (loader_pvh_start_info(&mem, "console=ttyS0", NULL, 0, 0, &si, err, sizeof err))
            abort();
        /* Leave RAM zeroed for the next input (only what this one touched). */
        memset(ram + a.load_start, 0, a.load_end - a.load_start);
    }
    return 0;
}
