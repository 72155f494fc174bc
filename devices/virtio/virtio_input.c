/* virtio-input device model: keyboard, mouse, single- and multi-touch screens. */
#include "devices/virtio/virtio_input.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_QUEUE_SIZE 64
#define INPUT_NAME_MAX   64

enum input_kind { KIND_KEYBOARD, KIND_MOUSE, KIND_SINGLE_TOUCH, KIND_MULTI_TOUCH };

static const struct {
    const char *arg, *name;
    uint16_t product;
} kinds[] = {
    [KIND_KEYBOARD] = { "keyboard", "vmlab Virtio Keyboard", 0x0001 },
    [KIND_MOUSE] = { "mouse", "vmlab Virtio Mouse", 0x0002 },
    [KIND_SINGLE_TOUCH] = { "single-touch", "vmlab Virtio Touchscreen", 0x0003 },
    [KIND_MULTI_TOUCH] = { "multi-touch", "vmlab Virtio Multitouch Touchscreen", 0x0004 },
};

struct vinput {
    struct virtio_dev vd;               /* first: the bus opaque is a virtio_dev */
    enum input_kind kind;
    uint32_t width, height;
    char name[INPUT_NAME_MAX + 1], serial[INPUT_NAME_MAX + 1];
    /* The selected config answer: cfg[0..7] header, cfg[8..] data. */
    uint8_t cfg[VIRTIO_INPUT_CFG_SIZE];
    /* Pending events, a ring of 8-byte events. */
    uint8_t pending[VIRTIO_INPUT_PENDING_MAX][VIRTIO_INPUT_EVENT_SIZE];
    uint32_t head, count;
    struct virtio_input_counters ctr;
    int session;                        /* a driver reached DRIVER_OK since the last reset */
    struct vq_chain chain;
};

static void set_bit(uint8_t *bm, unsigned bit)
{
    bm[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

/* Bitmap of supported codes of event type `type` into bm (128 bytes); returns its size in
 * bytes (the last non-zero byte + 1), 0 when the type is not supported. */
static unsigned ev_bits(const struct vinput *in, unsigned type, uint8_t *bm)
{
    static const uint16_t touch_abs[] = { ABS_X, ABS_Y };
    static const uint16_t mt_abs[] = { ABS_X, ABS_Y, ABS_MT_SLOT, ABS_MT_POSITION_X,
                                       ABS_MT_POSITION_Y, ABS_MT_TRACKING_ID };
    unsigned size = 0;

    memset(bm, 0, 128);
    switch (type) {
    case EV_SYN:
        set_bit(bm, SYN_REPORT);
        break;
    case EV_KEY:
        if (in->kind == KIND_KEYBOARD) {
            for (unsigned k = 1; k < 0x100; k++)      /* KEY_ESC .. the keyboard block */
                set_bit(bm, k);
        } else if (in->kind == KIND_MOUSE) {
            set_bit(bm, BTN_LEFT);
            set_bit(bm, BTN_RIGHT);
            set_bit(bm, BTN_MIDDLE);
        } else {
            set_bit(bm, BTN_TOUCH);
        }
        break;
    case EV_REL:
        if (in->kind == KIND_MOUSE) {
            set_bit(bm, REL_X);
            set_bit(bm, REL_Y);
            set_bit(bm, REL_WHEEL);
        }
        break;
    case EV_ABS:
        if (in->kind == KIND_SINGLE_TOUCH)
            for (unsigned i = 0; i < sizeof(touch_abs) / sizeof(touch_abs[0]); i++)
                set_bit(bm, touch_abs[i]);
        else if (in->kind == KIND_MULTI_TOUCH)
            for (unsigned i = 0; i < sizeof(mt_abs) / sizeof(mt_abs[0]); i++)
                set_bit(bm, mt_abs[i]);
        break;
    case EV_LED:
        if (in->kind == KIND_KEYBOARD) {
            set_bit(bm, LED_NUML);
            set_bit(bm, LED_CAPSL);
            set_bit(bm, LED_SCROLLL);
        }
        break;
    default:
        break;
    }
    for (unsigned i = 0; i < 128; i++)
        if (bm[i])
            size = i + 1;
    return size;
}

/* ABS_INFO {le32 min, max, fuzz, flat, res} for axis `code`; 0 if the axis is absent. */
static unsigned abs_info(const struct vinput *in, unsigned code, uint8_t *out)
{
    uint8_t bm[128];
    uint32_t v[5] = { 0 };

    if (code >= 128 * 8 || !ev_bits(in, EV_ABS, bm) || !(bm[code / 8] >> (code % 8) & 1))
        return 0;
    switch (code) {
    case ABS_X: case ABS_MT_POSITION_X: v[1] = in->width - 1; break;
    case ABS_Y: case ABS_MT_POSITION_Y: v[1] = in->height - 1; break;
    case ABS_MT_SLOT: v[1] = VIRTIO_INPUT_MT_SLOTS - 1; break;
    case ABS_MT_TRACKING_ID: v[1] = 0xffff; break;
    }
    for (unsigned i = 0; i < 5; i++) {
        uint32_t le = v[i];     /* x86 hosts only: little-endian already */
        memcpy(out + 4 * i, &le, 4);
    }
    return 20;
}

/* Fills cfg[2] (size) and cfg[8..] for the current select/subsel. */
static void cfg_select(struct vinput *in)
{
    uint8_t sel = in->cfg[VIRTIO_INPUT_CFG_SELECT], sub = in->cfg[VIRTIO_INPUT_CFG_SUBSEL];
    uint8_t *data = in->cfg + VIRTIO_INPUT_CFG_DATA;
    unsigned size = 0;

    memset(data, 0, 128);
    switch (sel) {
    case VIRTIO_INPUT_CFG_ID_NAME:
        if (!sub) {
            size = (unsigned)strlen(in->name);
            memcpy(data, in->name, size);
        }
        break;
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        if (!sub) {
            size = (unsigned)strlen(in->serial);
            memcpy(data, in->serial, size);
        }
        break;
    case VIRTIO_INPUT_CFG_ID_DEVIDS:
        if (!sub) {
            uint16_t ids[4] = { BUS_VIRTUAL, 0, kinds[in->kind].product, 1 };
            memcpy(data, ids, sizeof(ids));
            size = sizeof(ids);
        }
        break;
    case VIRTIO_INPUT_CFG_PROP_BITS:
        if (!sub && in->kind != KIND_KEYBOARD) {
            data[0] = in->kind == KIND_MOUSE ? 1u << INPUT_PROP_POINTER
                                             : 1u << INPUT_PROP_DIRECT;
            size = 1;
        }
        break;
    case VIRTIO_INPUT_CFG_EV_BITS:
        size = ev_bits(in, sub, data);
        break;
    case VIRTIO_INPUT_CFG_ABS_INFO:
        size = abs_info(in, sub, data);
        break;
    default:
        break;
    }
    in->cfg[VIRTIO_INPUT_CFG_SIZE_OFF] = (uint8_t)size;
}

static void input_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len)
{
    memcpy(buf, ((struct vinput *)vd)->cfg + off, len);
}

static void input_config_write(struct virtio_dev *vd, uint32_t off, const void *buf,
                               unsigned len)
{
    struct vinput *in = (struct vinput *)vd;
    int changed = 0;

    /* Only select and subsel are writable (§5.8.5: the driver writes them, then reads). */
    for (unsigned i = 0; i < len; i++) {
        uint32_t o = off + i;
        if (o == VIRTIO_INPUT_CFG_SELECT || o == VIRTIO_INPUT_CFG_SUBSEL) {
            in->cfg[o] = ((const uint8_t *)buf)[i];
            changed = 1;
        } else {
            virtio_dev_log(vd, "virtio-input: config write at 0x%x ignored (read-only)", o);
            break;
        }
    }
    if (changed)
        cfg_select(in);
}

/* Moves pending events into the driver's event buffers, one event per buffer. */
static void input_flush(struct vinput *in)
{
    struct virtio_dev *vd = &in->vd;
    int pushed = 0;

    while (in->count && virtio_dev_pop(vd, VIRTIO_INPUT_EVENT_Q, &in->chain) > 0) {
        uint32_t len = 0;
        if (in->chain.write_len < VIRTIO_INPUT_EVENT_SIZE) {
            virtio_dev_log(vd, "virtio-input: event buffer of %llu bytes is shorter than an "
                           "8-byte event; returned empty",
                           (unsigned long long)in->chain.write_len);
        } else if (!vq_chain_write(vd->env.mem, &in->chain, 0, in->pending[in->head],
                                   VIRTIO_INPUT_EVENT_SIZE)) {
            len = VIRTIO_INPUT_EVENT_SIZE;
            in->head = (in->head + 1) % VIRTIO_INPUT_PENDING_MAX;
            in->count--;
            in->ctr.delivered++;
        }
        if (virtio_dev_push(vd, VIRTIO_INPUT_EVENT_Q, &in->chain, len))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VIRTIO_INPUT_EVENT_Q);
}

/* LED (and other) events from the driver: kept for the host, buffers returned. */
static void input_status(struct vinput *in)
{
    struct virtio_dev *vd = &in->vd;
    int pushed = 0;

    while (virtio_dev_pop(vd, VIRTIO_INPUT_STATUS_Q, &in->chain) > 0) {
        uint8_t ev[VIRTIO_INPUT_EVENT_SIZE];
        if (in->chain.read_len != VIRTIO_INPUT_EVENT_SIZE) {
            virtio_dev_log(vd, "virtio-input: status buffer of %llu bytes is not one 8-byte "
                           "event; ignored", (unsigned long long)in->chain.read_len);
        } else if (!vq_chain_read(vd->env.mem, &in->chain, 0, ev, sizeof(ev))) {
            uint16_t type, code;
            uint32_t value;
            memcpy(&type, ev, 2);
            memcpy(&code, ev + 2, 2);
            memcpy(&value, ev + 4, 4);
            in->ctr.status++;
            if (type == EV_LED && code < 32) {
                if (value)
                    in->ctr.leds |= 1u << code;
                else
                    in->ctr.leds &= ~(1u << code);
            }
        }
        if (virtio_dev_push(vd, VIRTIO_INPUT_STATUS_Q, &in->chain, 0))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VIRTIO_INPUT_STATUS_Q);
}

static void input_notify(struct virtio_dev *vd, unsigned q)
{
    struct vinput *in = (struct vinput *)vd;

    if (q == VIRTIO_INPUT_EVENT_Q)
        input_flush(in);
    else if (q == VIRTIO_INPUT_STATUS_Q)
        input_status(in);
}

static void input_reset(struct virtio_dev *vd)
{
    struct vinput *in = (struct vinput *)vd;

    /* Events queued for a driver that went away would arrive out of context for the next
     * one; events from before any driver (input sent while the guest boots) wait for it. */
    if (in->session) {
        in->ctr.discarded += in->count;
        in->head = in->count = 0;
    }
    in->session = 0;
    in->ctr.leds = 0;
    memset(in->cfg, 0, sizeof(in->cfg));
}

static void input_driver_ok(struct virtio_dev *vd)
{
    ((struct vinput *)vd)->session = 1;
}

static const struct virtio_dev_ops input_ops = {
    .device_id = VIRTIO_ID_INPUT,
    .num_queues = 2,
    .queue_max = INPUT_QUEUE_SIZE,
    .config_size = VIRTIO_INPUT_CFG_SIZE,
    .config_read = input_config_read,
    .config_write = input_config_write,
    .queue_notify = input_notify,
    .driver_ok = input_driver_ok,
    .reset = input_reset,
};

static int input_host_input(void *state, const uint8_t *data, size_t len, char *err,
                            size_t errlen)
{
    struct vinput *in = state;

    if (len % VIRTIO_INPUT_EVENT_SIZE) {
        snprintf(err, errlen, "virtio-input: %zu bytes of input is not a whole number of "
                 "8-byte events", len);
        return -EINVAL;
    }
    for (size_t off = 0; off < len; off += VIRTIO_INPUT_EVENT_SIZE) {
        in->ctr.injected++;
        if (in->count == VIRTIO_INPUT_PENDING_MAX) {
            in->ctr.dropped++;
            continue;
        }
        memcpy(in->pending[(in->head + in->count) % VIRTIO_INPUT_PENDING_MAX], data + off,
               VIRTIO_INPUT_EVENT_SIZE);
        in->count++;
    }
    if (virtio_dev_live(&in->vd) && in->vd.vqs[VIRTIO_INPUT_EVENT_Q].ready)
        input_flush(in);
    return 0;
}

void virtio_input_counters(const void *state, struct virtio_input_counters *out)
{
    const struct vinput *in = state;

    *out = in->ctr;
    out->pending = in->count;
}

/* Snapshots: the core, the config selection, the pending events (oldest first) and the
 * counters. */
static int input_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct vinput *in = state;

    (void)err;
    (void)errlen;
    virtio_dev_save(&in->vd, w);
    snapshot_put_u8(w, in->cfg[VIRTIO_INPUT_CFG_SELECT]);
    snapshot_put_u8(w, in->cfg[VIRTIO_INPUT_CFG_SUBSEL]);
    snapshot_put_u8(w, (uint8_t)in->session);
    snapshot_put_u32(w, in->count);
    for (uint32_t i = 0; i < in->count; i++)
        snapshot_put_bytes(w, in->pending[(in->head + i) % VIRTIO_INPUT_PENDING_MAX],
                           VIRTIO_INPUT_EVENT_SIZE);
    snapshot_put_u64(w, in->ctr.injected);
    snapshot_put_u64(w, in->ctr.delivered);
    snapshot_put_u64(w, in->ctr.dropped);
    snapshot_put_u64(w, in->ctr.discarded);
    snapshot_put_u64(w, in->ctr.status);
    snapshot_put_u32(w, in->ctr.leds);
    return 0;
}

static int input_load(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct vinput *in = state;
    int rc = virtio_dev_load(&in->vd, r, err, errlen);

    if (rc)
        return rc;
    in->cfg[VIRTIO_INPUT_CFG_SELECT] = snapshot_get_u8(r, "input config select");
    in->cfg[VIRTIO_INPUT_CFG_SUBSEL] = snapshot_get_u8(r, "input config subsel");
    in->session = snapshot_get_u8(r, "input driver session") != 0;
    uint32_t n = snapshot_get_u32(r, "input pending events");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    if (n > VIRTIO_INPUT_PENDING_MAX)
        return snapshot_fail(r, err, errlen, "input pending events %u exceed the limit of %u",
                             n, VIRTIO_INPUT_PENDING_MAX);
    for (uint32_t i = 0; i < n; i++)
        snapshot_get_bytes(r, in->pending[i], VIRTIO_INPUT_EVENT_SIZE, "input pending event");
    in->head = 0;
    in->count = n;
    in->ctr.injected = snapshot_get_u64(r, "input events injected");
    in->ctr.delivered = snapshot_get_u64(r, "input events delivered");
    in->ctr.dropped = snapshot_get_u64(r, "input events dropped");
    in->ctr.discarded = snapshot_get_u64(r, "input events discarded");
    in->ctr.status = snapshot_get_u64(r, "input status events");
    in->ctr.leds = snapshot_get_u32(r, "input leds");
    if ((rc = snapshot_check(r, err, errlen)))
        return rc;
    cfg_select(in);
    return 0;
}

static void input_destroy(void *state)
{
    free(state);
}

static int parse_dim(const char *args, const char *key, uint32_t def, uint32_t *out,
                     char *err, size_t errlen)
{
    char v[32], *end;
    int rc = device_arg_get(args, key, v, sizeof(v));

    *out = def;
    if (rc == 0)
        return 0;
    unsigned long n = rc > 0 ? strtoul(v, &end, 10) : 0;
    if (rc < 0 || end == v || *end || n < 1 || n > 65536) {
        snprintf(err, errlen, "virtio-input: %s=%s is not a size in pixels (1..65536)", key,
                 rc < 0 ? "(too long)" : v);
        return -EINVAL;
    }
    *out = (uint32_t)n;
    return 0;
}

static int input_create(const char *args, const struct device_env *env, void **state,
                        char *err, size_t errlen)
{
    static const char *const allowed[] = { "kind", "width", "height", "name", "serial", "id",
                                           NULL };
    char kind[32] = "", name[INPUT_NAME_MAX + 2] = "", serial[INPUT_NAME_MAX + 2] = "";
    struct vinput *in;
    unsigned k;
    uint32_t w, h;
    int rc;

    *state = NULL;
    if ((rc = device_args_check(args, allowed, err, errlen)))
        return rc;
    if (device_arg_get(args, "kind", kind, sizeof(kind)) <= 0) {
        snprintf(err, errlen, "virtio-input: kind= is required (keyboard, mouse, "
                 "single-touch or multi-touch)");
        return -EINVAL;
    }
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (!strcmp(kinds[k].arg, kind))
            break;
    if (k == sizeof(kinds) / sizeof(kinds[0])) {
        snprintf(err, errlen, "virtio-input: kind=%s is not one of keyboard, mouse, "
                 "single-touch, multi-touch", kind);
        return -EINVAL;
    }
    if (device_arg_get(args, "name", name, sizeof(name)) < 0 ||
        device_arg_get(args, "serial", serial, sizeof(serial)) < 0 ||
        strlen(name) > INPUT_NAME_MAX || strlen(serial) > INPUT_NAME_MAX) {
        snprintf(err, errlen, "virtio-input: name= and serial= are at most %d bytes",
                 INPUT_NAME_MAX);
        return -EINVAL;
    }
    if ((rc = parse_dim(args, "width", 1280, &w, err, errlen)) ||
        (rc = parse_dim(args, "height", 1024, &h, err, errlen)))
        return rc;
    in = calloc(1, sizeof(*in));
    if (!in) {
        snprintf(err, errlen, "virtio-input: out of memory");
        return -ENOMEM;
    }
    in->kind = (enum input_kind)k;
    in->width = w;
    in->height = h;
    /* Lengths checked above: both fit with their NUL. */
    memcpy(in->name, name[0] ? name : kinds[k].name,
           strlen(name[0] ? name : kinds[k].name) + 1);
    memcpy(in->serial, serial, strlen(serial) + 1);
    virtio_dev_init(&in->vd, &input_ops, env, 0);
    *state = in;
    return 0;
}

const struct device_type virtio_input_type = {
    .kind = "virtio-input",
    .space = BUS_MMIO,
    .window_size = VIRTIO_MMIO_WINDOW_SIZE,
    .create = input_create,
    .ops = &virtio_mmio_ops,
    .destroy = input_destroy,
    .host_input = input_host_input,
    .save = input_save,
    .load = input_load,
    .num_queues = virtio_dev_num_queues,
    .queue_stats = virtio_dev_queue_stats,
    .virtio_id = VIRTIO_ID_INPUT,
};
