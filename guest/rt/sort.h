/* rt_sort_u64: heapsort (no recursion, no allocation), for latency samples
 * (guest/progs/latency.c, vsock_client.c). In a header so each program compiles it as its
 * own static code, exactly as latency.c always did (its scenario counts instructions).
 * Include it only where rt_sort_u64 is used. */
#ifndef GUEST_RT_SORT_H
#define GUEST_RT_SORT_H

#include <stddef.h>
#include <stdint.h>

static void rt_sort_sift(uint64_t *a, size_t i, size_t n)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && a[l] > a[m])
            m = l;
        if (l + 1 < n && a[l + 1] > a[m])
            m = l + 1;
        if (m == i)
            return;
        uint64_t t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
}

static void rt_sort_u64(uint64_t *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        rt_sort_sift(a, i, n);
    for (size_t e = n; e-- > 1;) {
        uint64_t t = a[0];
        a[0] = a[e];
        a[e] = t;
        rt_sort_sift(a, 0, e);
    }
}

#endif
