/* The driver-less mock virtio driver (see mock_virtio.h). */
#include "tests/mock_virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void sink_set_level(void *opaque, unsigned gsi, int level)
{
    struct mock_virtio *m = opaque;

    (void)gsi;
    if (level && !m->irq_level)
        m->irq_raises++;
    m->irq_level = level;
}

static uint64_t clock_now(void *opaque)
{
    return ((struct mock_virtio *)opaque)->now_ns;
}

static int64_t clock_schedule(void *opaque, uint64_t at_ns, clock_timer_fn fn, void *arg)
{
    struct mock_virtio *m = opaque;

    if (m->ntimers == MOCK_MAX_TIMERS)
        return -ENOSPC;
    m->timers[m->ntimers] = (struct mock_timer){ at_ns, m->timer_seq++, ++m->next_timer_id,
                                                 fn, arg };
    m->ntimers++;
    return m->next_timer_id;
}

static int clock_cancel(void *opaque, int64_t id)
{
    struct mock_virtio *m = opaque;

    for (unsigned i = 0; i < m->ntimers; i++)
        if (m->timers[i].id == id) {
            m->timers[i] = m->timers[--m->ntimers];
            return 0;
        }
    return -ENOENT;
}

void mock_virtio_advance(struct mock_virtio *m, uint64_t ns)
{
    uint64_t end = m->now_ns + ns;

    for (;;) {
        int best = -1;
        for (unsigned i = 0; i < m->ntimers; i++) {
            const struct mock_timer *t = &m->timers[i];
            if (t->at_ns <= end && (best < 0 || t->at_ns < m->timers[best].at_ns ||
                                    (t->at_ns == m->timers[best].at_ns &&
                                     t->seq < m->timers[best].seq)))
                best = (int)i;
        }
        if (best < 0)
            break;
        struct mock_timer t = m->timers[best];
        m->timers[best] = m->timers[--m->ntimers];
        if (t.at_ns > m->now_ns)
            m->now_ns = t.at_ns;
        t.fn(t.arg);
    }
    m->now_ns = end;
}

int mock_virtio_init(struct mock_virtio *m, uint64_t ram_size, uint64_t seed)
{
    void *ram;
    int rc;

    memset(m, 0, sizeof(*m));
    if (ram_size < 2 * MOCK_HEAP_START)
        return -EINVAL;
    ram = calloc(1, ram_size);
    if (!ram)
        return -ENOMEM;
    rc = mock_virtio_init_buffer(m, ram, ram_size, seed);
    m->ram_borrowed = 0;
    return rc;
}

int mock_virtio_init_buffer(struct mock_virtio *m, void *ram, uint64_t ram_size,
                            uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    if (ram_size < 2 * MOCK_HEAP_START)
        return -EINVAL;
    m->ram = ram;
    m->ram_borrowed = 1;
    m->ram_size = ram_size;
    guest_mem_init_buffer(&m->mem, m->ram, ram_size);
    m->sink = (struct irq_sink){ sink_set_level, m };
    m->clock = (struct clock){ clock_now, clock_schedule, clock_cancel, m };
    m->log = open_memstream(&m->log_text, &m->log_size);
    m->env = (struct device_env){
        .mem = &m->mem,
        .clock = &m->clock,
        .irq = { &m->sink, 5 },
        .base = 0xd0000000ULL,
        .seed = seed,
        .deterministic = 1,
        .log = m->log ? m->log : stderr,
    };
    m->heap = MOCK_HEAP_START;
    return 0;
}

int mock_virtio_create(struct mock_virtio *m, const struct device_type *type,
                       const char *args, char *err, size_t errlen)
{
    void *state = NULL;
    int rc;

    if (m->type)
        return -EBUSY;      /* one device per mock */
    rc = type->create(args ? args : "", &m->env, &state, err, errlen);
    if (rc)
        return rc;
    m->type = type;
    m->state = state;
    return 0;
}

void mock_virtio_destroy(struct mock_virtio *m)
{
    if (m->type && m->type->destroy)
        m->type->destroy(m->state);
    m->type = NULL;
    m->state = NULL;
    if (m->log)
        fclose(m->log);
    free(m->log_text);
    if (!m->ram_borrowed)
        free(m->ram);
    memset(m, 0, sizeof(*m));
}

const char *mock_virtio_log(struct mock_virtio *m)
{
    if (!m->log)
        return "";
    fflush(m->log);
    return m->log_text ? m->log_text : "";
}

int mock_virtio_read(struct mock_virtio *m, uint64_t off, unsigned size, uint64_t *value)
{
    return m->type->ops->read(m->state, off, size, value);
}

int mock_virtio_write(struct mock_virtio *m, uint64_t off, unsigned size, uint64_t value)
{
    return m->type->ops->write(m->state, off, size, value);
}

uint32_t mock_virtio_read32(struct mock_virtio *m, uint64_t off)
{
    uint64_t v = 0;
    m->type->ops->read(m->state, off, 4, &v);
    return (uint32_t)v;
}

void mock_virtio_write32(struct mock_virtio *m, uint64_t off, uint32_t value)
{
    m->type->ops->write(m->state, off, 4, value);
}

uint64_t mock_virtio_alloc(struct mock_virtio *m, uint64_t size, uint64_t align)
{
    uint64_t at;

    if (align == 0)
        align = 1;
    at = (m->heap + align - 1) / align * align;
    if (at > m->ram_size || size > m->ram_size - at)
        return 0;
    m->heap = at + size;
    return at;
}

void *mock_virtio_host(struct mock_virtio *m, uint64_t gpa, uint64_t len)
{
    if (gpa > m->ram_size || len > m->ram_size - gpa)
        return NULL;
    return m->ram + gpa;
}

/* Little-endian accessors on guest RAM (the host is little-endian x86_64). */
static void w16(struct mock_virtio *m, uint64_t gpa, uint16_t v) { memcpy(m->ram + gpa, &v, 2); }
static uint16_t r16(struct mock_virtio *m, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, m->ram + gpa, 2);
    return v;
}
static uint32_t r32(struct mock_virtio *m, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, m->ram + gpa, 4);
    return v;
}

static void write_desc(struct mock_virtio *m, uint64_t gpa, uint64_t addr, uint32_t len,
                       uint16_t a, uint16_t b)
{
    memcpy(m->ram + gpa, &addr, 8);
    memcpy(m->ram + gpa + 8, &len, 4);
    w16(m, gpa + 12, a);
    w16(m, gpa + 14, b);
}

int mock_virtio_negotiate(struct mock_virtio *m, const struct mock_virtio_opts *o)
{
    uint64_t offered, want;

    mock_virtio_write32(m, VIRTIO_MMIO_STATUS, 0);
    mock_virtio_write32(m, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    mock_virtio_write32(m, VIRTIO_MMIO_STATUS,
                        VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    mock_virtio_write32(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    offered = mock_virtio_read32(m, VIRTIO_MMIO_DEVICE_FEATURES);
    mock_virtio_write32(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)mock_virtio_read32(m, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | o->device_features;
    if (o->packed)
        want |= VIRTIO_BIT(VIRTIO_F_RING_PACKED);
    if (o->indirect)
        want |= VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC);
    if (o->event_idx)
        want |= VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
    want &= offered;
    mock_virtio_write32(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    mock_virtio_write32(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)want);
    mock_virtio_write32(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    mock_virtio_write32(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(want >> 32));
    mock_virtio_write32(m, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
                        VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(mock_virtio_read32(m, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
        return -EPROTO;
    m->features = want;
    m->packed = !!(want & VIRTIO_BIT(VIRTIO_F_RING_PACKED));
    m->indirect = !!(want & VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC));
    m->event_idx = !!(want & VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX));
    return 0;
}

static void vq_driver_reset(struct mock_vq *vq)
{
    vq->num_free = vq->num;
    vq->added = 0;
    vq->avail_idx = vq->last_used = 0;
    vq->free_head = 0;
    for (unsigned i = 0; i < vq->num; i++)
        vq->next_free[i] = (uint16_t)(i + 1);
    vq->next_avail = vq->next_used = 0;
    vq->avail_wrap = vq->used_wrap = 1;
    vq->nid_free = 0;
    for (unsigned i = vq->num; i-- > 0;)
        vq->id_free[vq->nid_free++] = (uint16_t)i;
}

int mock_virtio_queue_setup(struct mock_virtio *m, unsigned q, uint16_t size)
{
    struct mock_vq *vq;
    uint32_t max;
    uint64_t dsz, drsz, dvsz;

    if (q >= MOCK_MAX_QUEUES)
        return -EINVAL;
    vq = &m->vqs[q];
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_SEL, q);
    if (mock_virtio_read32(m, VIRTIO_MMIO_QUEUE_READY))
        return -EBUSY;
    max = mock_virtio_read32(m, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max == 0)
        return -ENOENT;
    if (max > MOCK_QUEUE_MAX)
        max = MOCK_QUEUE_MAX;
    if (size == 0 || size > max)
        size = (uint16_t)max;
    /* Rings are allocated once per queue and reused after reset (same size or smaller). */
    if (!vq->desc || size > vq->alloc_num || m->packed != vq->alloc_packed) {
        dsz = 16ull * size;
        drsz = m->packed ? 4 : VIRTQ_AVAIL_SIZE(size);
        dvsz = m->packed ? 4 : VIRTQ_USED_SIZE(size);
        vq->desc = mock_virtio_alloc(m, dsz, 16);
        vq->driver = mock_virtio_alloc(m, drsz + 8, 4);
        vq->device = mock_virtio_alloc(m, dvsz + 8, 4);
        if (!vq->desc || !vq->driver || !vq->device)
            return -ENOMEM;
        vq->alloc_num = size;
        vq->alloc_packed = m->packed;
    }
    /* Indirect tables only when negotiated (small RAM stays usable for fuzzers). */
    if (m->indirect && !vq->indirect) {
        vq->indirect = mock_virtio_alloc(m, (uint64_t)MOCK_QUEUE_MAX * MOCK_INDIRECT_MAX * 16, 16);
        if (!vq->indirect)
            return -ENOMEM;
    }
    vq->num = size;
    memset(m->ram + vq->desc, 0, 16ull * size);
    memset(m->ram + vq->driver, 0, m->packed ? 4 : VIRTQ_AVAIL_SIZE(size));
    memset(m->ram + vq->device, 0, m->packed ? 4 : VIRTQ_USED_SIZE(size));
    vq_driver_reset(vq);
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_NUM, size);
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vq->desc);
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(vq->desc >> 32));
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)vq->driver);
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(vq->driver >> 32));
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)vq->device);
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(vq->device >> 32));
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_READY, 1);
    if (mock_virtio_read32(m, VIRTIO_MMIO_QUEUE_READY) != 1)
        return -EPROTO;
    vq->enabled = 1;
    if (q + 1 > m->nqueues)
        m->nqueues = q + 1;
    return 0;
}

int mock_virtio_driver_ok(struct mock_virtio *m)
{
    uint32_t st = mock_virtio_read32(m, VIRTIO_MMIO_STATUS);

    mock_virtio_write32(m, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
    st = mock_virtio_read32(m, VIRTIO_MMIO_STATUS);
    return (st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
               ? 0 : -EPROTO;
}

int mock_virtio_setup(struct mock_virtio *m, const struct mock_virtio_opts *o)
{
    int rc = mock_virtio_negotiate(m, o);

    if (rc)
        return rc;
    for (unsigned q = 0; q < MOCK_MAX_QUEUES; q++) {
        rc = mock_virtio_queue_setup(m, q, o->queue_size);
        if (rc == -ENOENT)
            break;
        if (rc)
            return rc;
    }
    return mock_virtio_driver_ok(m);
}

void mock_virtio_reset(struct mock_virtio *m)
{
    mock_virtio_write32(m, VIRTIO_MMIO_STATUS, 0);
    for (unsigned q = 0; q < MOCK_MAX_QUEUES; q++) {
        m->vqs[q].enabled = 0;
        vq_driver_reset(&m->vqs[q]);
    }
}

static uint64_t indirect_table(const struct mock_vq *vq, unsigned id)
{
    return vq->indirect + (uint64_t)id * MOCK_INDIRECT_MAX * 16;
}

static int split_add(struct mock_virtio *m, struct mock_vq *vq, const struct mock_buf *bufs,
                     unsigned n, int indirect)
{
    unsigned need = indirect ? 1 : n;
    uint16_t head = vq->free_head, idx = head, last = head;

    if (vq->num_free < need)
        return -ENOSPC;
    if (indirect) {
        uint64_t t = indirect_table(vq, head);
        for (unsigned i = 0; i < n; i++)
            write_desc(m, t + 16ull * i, bufs[i].gpa, bufs[i].len,
                       (uint16_t)((bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
                                  (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
                       (uint16_t)(i + 1));
        write_desc(m, vq->desc + 16ull * head, t, n * 16, VIRTQ_DESC_F_INDIRECT, 0);
        last = head;
    } else {
        for (unsigned i = 0; i < n; i++) {
            last = idx;
            uint16_t next = vq->next_free[idx];
            write_desc(m, vq->desc + 16ull * idx, bufs[i].gpa, bufs[i].len,
                       (uint16_t)((bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
                                  (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
                       i + 1 < n ? next : 0);
            idx = next;
        }
    }
    vq->free_head = vq->next_free[last];
    vq->num_free = (uint16_t)(vq->num_free - need);
    vq->chain_len[head] = (uint16_t)need;
    w16(m, vq->driver + 4 + 2ull * (vq->avail_idx % vq->num), head);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->avail_idx++;
    w16(m, vq->driver + 2, vq->avail_idx);
    vq->added++;
    return head;
}

static int packed_add(struct mock_virtio *m, struct mock_vq *vq, const struct mock_buf *bufs,
                      unsigned n, int indirect)
{
    unsigned need = indirect ? 1 : n;
    uint16_t avail = vq->avail_wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
    uint16_t first = vq->next_avail, first_flags = 0;

    if (vq->num_free < need || vq->nid_free == 0)
        return -ENOSPC;
    uint16_t id = vq->id_free[--vq->nid_free];
    if (indirect) {
        uint64_t t = indirect_table(vq, id);
        for (unsigned i = 0; i < n; i++)
            write_desc(m, t + 16ull * i, bufs[i].gpa, bufs[i].len, 0,
                       bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0);
        write_desc(m, vq->desc + 16ull * first, t, n * 16, id, 0);
        first_flags = VIRTQ_DESC_F_INDIRECT | avail;
        if (++vq->next_avail == vq->num) {
            vq->next_avail = 0;
            vq->avail_wrap ^= 1;
        }
    } else {
        for (unsigned i = 0; i < n; i++) {
            uint16_t pos = vq->next_avail;
            uint16_t f = (uint16_t)((bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
                                    (vq->avail_wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED));
            write_desc(m, vq->desc + 16ull * pos, bufs[i].gpa, bufs[i].len, id,
                       pos == first ? 0 : f);
            if (pos == first)
                first_flags = f;
            if (++vq->next_avail == vq->num) {
                vq->next_avail = 0;
                vq->avail_wrap ^= 1;
            }
        }
    }
    vq->id_ndesc[id] = (uint16_t)need;
    vq->num_free = (uint16_t)(vq->num_free - need);
    /* The first descriptor's flags publish the whole list. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    w16(m, vq->desc + 16ull * first + 14, first_flags);
    vq->added = (uint16_t)(vq->added + need);
    return id;
}

int mock_vq_add(struct mock_virtio *m, unsigned q, const struct mock_buf *bufs, unsigned n)
{
    struct mock_vq *vq;

    if (q >= MOCK_MAX_QUEUES || !m->vqs[q].enabled || n == 0)
        return -EINVAL;
    vq = &m->vqs[q];
    int indirect = m->indirect && n > 1 && n <= MOCK_INDIRECT_MAX;
    return m->packed ? packed_add(m, vq, bufs, n, indirect) : split_add(m, vq, bufs, n, indirect);
}

int mock_vq_kick_needed(struct mock_virtio *m, unsigned q)
{
    struct mock_vq *vq = &m->vqs[q];
    uint16_t added = vq->added;
    int r;

    vq->added = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!m->packed) {
        if (!m->event_idx)
            return !(r16(m, vq->device) & VIRTQ_USED_F_NO_NOTIFY);
        uint16_t ev = r16(m, vq->device + 4 + 8ull * vq->num);
        return virtq_need_event(ev, vq->avail_idx, (uint16_t)(vq->avail_idx - added));
    }
    uint16_t off_wrap = r16(m, vq->device), flags = r16(m, vq->device + 2) & 3;
    if (flags == VIRTQ_EVENT_F_DISABLE)
        return 0;
    if (flags != VIRTQ_EVENT_F_DESC)
        return 1;
    uint16_t event = off_wrap & 0x7fff;
    if ((off_wrap >> 15) != vq->avail_wrap)
        event = (uint16_t)(event - vq->num);
    r = virtq_need_event(event, vq->next_avail, (uint16_t)(vq->next_avail - added));
    return r;
}

void mock_vq_kick(struct mock_virtio *m, unsigned q)
{
    m->vqs[q].added = 0;
    mock_virtio_write32(m, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

int mock_vq_get_used(struct mock_virtio *m, unsigned q, uint32_t *id, uint32_t *len)
{
    struct mock_vq *vq = &m->vqs[q];

    if (!vq->enabled)
        return 0;
    if (!m->packed) {
        if (r16(m, vq->device + 2) == vq->last_used)
            return 0;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint64_t e = vq->device + 4 + 8ull * (vq->last_used % vq->num);
        uint32_t head = r32(m, e), l = r32(m, e + 4);
        vq->last_used++;
        if (m->event_idx)
            w16(m, vq->driver + 4 + 2ull * vq->num, vq->last_used);
        if (head < vq->num) {
            /* Return the chain's descriptors to the free list. */
            uint16_t idx = (uint16_t)head, n = vq->chain_len[head];
            for (uint16_t i = 1; i < n; i++)
                idx = vq->next_free[idx];
            vq->next_free[idx] = vq->free_head;
            vq->free_head = (uint16_t)head;
            vq->num_free = (uint16_t)(vq->num_free + n);
            vq->chain_len[head] = 0;
        }
        *id = head;
        *len = l;
        return 1;
    }
    uint16_t flags = r16(m, vq->desc + 16ull * vq->next_used + 14);
    int used = !!(flags & VIRTQ_DESC_F_USED), avail = !!(flags & VIRTQ_DESC_F_AVAIL);
    if (used != vq->used_wrap || avail != vq->used_wrap)
        return 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t bid = r16(m, vq->desc + 16ull * vq->next_used + 12);
    uint32_t l = r32(m, vq->desc + 16ull * vq->next_used + 8);
    uint16_t n = bid < vq->num && vq->id_ndesc[bid] ? vq->id_ndesc[bid] : 1;
    uint32_t next = (uint32_t)vq->next_used + n;
    if (next >= vq->num) {
        next -= vq->num;
        vq->used_wrap ^= 1;
    }
    vq->next_used = (uint16_t)next;
    if (bid < vq->num && vq->id_ndesc[bid]) {
        vq->num_free = (uint16_t)(vq->num_free + n);
        vq->id_ndesc[bid] = 0;
        vq->id_free[vq->nid_free++] = bid;
    }
    *id = bid;
    *len = (flags & VIRTQ_DESC_F_WRITE) ? l : 0;
    return 1;
}

int mock_vq_request(struct mock_virtio *m, unsigned q, const struct mock_buf *bufs,
                    unsigned n, uint32_t *len)
{
    uint32_t id, l;
    int rc = mock_vq_add(m, q, bufs, n);

    if (rc < 0)
        return rc;
    mock_vq_kick(m, q);
    if (!mock_vq_get_used(m, q, &id, &l))
        return -EAGAIN;
    if (len)
        *len = l;
    return (int)id;
}

void mock_vq_set_no_interrupt(struct mock_virtio *m, unsigned q, int on)
{
    w16(m, m->vqs[q].driver, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
}

void mock_vq_set_used_event(struct mock_virtio *m, unsigned q, uint16_t idx)
{
    w16(m, m->vqs[q].driver + 4 + 2ull * m->vqs[q].num, idx);
}

void mock_vq_set_driver_event(struct mock_virtio *m, unsigned q, uint16_t flags,
                              uint16_t off_wrap)
{
    w16(m, m->vqs[q].driver, off_wrap);
    w16(m, m->vqs[q].driver + 2, flags);
}

void mock_vq_split_write_desc(struct mock_virtio *m, unsigned q, uint16_t idx, uint64_t addr,
                              uint32_t len, uint16_t flags, uint16_t next)
{
    write_desc(m, m->vqs[q].desc + 16ull * idx, addr, len, flags, next);
}

void mock_vq_split_publish(struct mock_virtio *m, unsigned q, uint16_t head)
{
    struct mock_vq *vq = &m->vqs[q];

    w16(m, vq->driver + 4 + 2ull * (vq->avail_idx % vq->num), head);
    vq->avail_idx++;
    w16(m, vq->driver + 2, vq->avail_idx);
}

void mock_vq_split_set_avail_idx(struct mock_virtio *m, unsigned q, uint16_t idx)
{
    m->vqs[q].avail_idx = idx;
    w16(m, m->vqs[q].driver + 2, idx);
}

void mock_vq_packed_publish(struct mock_virtio *m, unsigned q, const struct mock_raw_desc *d,
                            unsigned n)
{
    struct mock_vq *vq = &m->vqs[q];
    uint16_t first = vq->next_avail, first_flags = 0;

    for (unsigned i = 0; i < n; i++) {
        uint16_t pos = vq->next_avail;
        uint16_t f = (uint16_t)((d[i].flags & ~(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) |
                                (vq->avail_wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED));
        write_desc(m, vq->desc + 16ull * pos, d[i].addr, d[i].len, d[i].id,
                   i == 0 ? 0 : f);
        if (i == 0)
            first_flags = f;
        if (++vq->next_avail == vq->num) {
            vq->next_avail = 0;
            vq->avail_wrap ^= 1;
        }
    }
    w16(m, vq->desc + 16ull * first + 14, first_flags);
}

void mock_write_desc_table(struct mock_virtio *m, uint64_t gpa, const struct mock_raw_desc *d,
                           unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (m->packed)
            write_desc(m, gpa + 16ull * i, d[i].addr, d[i].len, d[i].id, d[i].flags);
        else
            write_desc(m, gpa + 16ull * i, d[i].addr, d[i].len, d[i].flags, d[i].id);
    }
}

uint32_t mock_virtio_ack_irq(struct mock_virtio *m)
{
    uint32_t isr = mock_virtio_read32(m, VIRTIO_MMIO_INTERRUPT_STATUS);

    if (isr)
        mock_virtio_write32(m, VIRTIO_MMIO_INTERRUPT_ACK, isr);
    return isr;
}
