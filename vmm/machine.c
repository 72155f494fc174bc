#include "machine.h"
#include "prng.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

uint64_t machine_device_seed(uint64_t run_seed, unsigned index)
{
    uint64_t x = run_seed ^ (0x5eedULL << 32) ^ index;
    return prng_splitmix64(&x);
}

unsigned machine_device_windows(const struct machine_device *d,
                                struct device_window out[DEVICE_MAX_WINDOWS])
{
    if (d->nwindows && d->nwindows <= DEVICE_MAX_WINDOWS) {
        memcpy(out, d->windows, d->nwindows * sizeof(out[0]));
        return d->nwindows;
    }
    const struct device_type *t = device_type_find(d->kind);
    return t ? device_type_windows(t, out) : 0;
}

/* The one window a kind had before windows were recorded. */
static int format1_window(const char *kind, struct device_window *w)
{
    const struct device_type *t = device_type_find(kind);
    struct device_window now[DEVICE_MAX_WINDOWS];

    if (!t)
        return -ENOENT;
    device_type_windows(t, now);
    *w = now[0];
    if (!strcmp(kind, "i8042"))
        w->size = 5;                /* ports 0x60-0x64, 0x61 included (reads 0) */
    return 0;
}

void machine_device_set_format1_windows(struct machine_device *d)
{
    d->nwindows = format1_window(d->kind, &d->windows[0]) ? 0 : 1;
}

int machine_device_check_windows(const struct machine_device *d, unsigned index, char *err,
                                 size_t errlen)
{
    const struct device_type *t = device_type_find(d->kind);
    struct device_window now[DEVICE_MAX_WINDOWS], old;

    if (d->nwindows > DEVICE_MAX_WINDOWS) {
        snprintf(err, errlen, "device %u (%s): %u windows, more than %d", index, d->kind,
                 d->nwindows, DEVICE_MAX_WINDOWS);
        return -EINVAL;
    }
    if (!t || !d->nwindows)
        return 0;
    unsigned n = device_type_windows(t, now);
    if (d->nwindows == n && !memcmp(d->windows, now, n * sizeof(now[0])))
        return 0;
    if (!format1_window(d->kind, &old) && d->nwindows == 1 &&
        !memcmp(&d->windows[0], &old, sizeof(old)))
        return 0;
    unsigned k = 0;                 /* the first window this layout lacks */
    while (k + 1 < d->nwindows && k < n && !memcmp(&d->windows[k], &now[k], sizeof(now[0])))
        k++;
    snprintf(err, errlen, "device %u (%s): window +%#llx size %#llx is not one a %s has",
             index, d->kind, (unsigned long long)d->windows[k].offset,
             (unsigned long long)d->windows[k].size, d->kind);
    return -EINVAL;
}
