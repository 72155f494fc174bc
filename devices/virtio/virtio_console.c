/* virtio-console device model: one port, scripted input, output to a file descriptor. */
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "devices/arg_unescape.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CON_QUEUE_SIZE 64
#define CON_BUF 4096

struct vcon {
    struct virtio_dev vd;               /* first: the bus opaque is a virtio_dev */
    int out_fd;                         /* -1: output discarded */
    int own_fd;
    char *in;                           /* scripted input, decoded */
    size_t in_len, in_pos;
    uint64_t out_bytes;
    struct vq_chain chain;
    uint8_t buf[CON_BUF];
};

static void con_output(struct vcon *c, const void *p, size_t n)
{
    const uint8_t *b = p;

    c->out_bytes += n;
    while (c->out_fd >= 0 && n) {
        ssize_t w = write(c->out_fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            virtio_dev_log(&c->vd, "virtio-console: output write failed: %s", strerror(errno));
            return;
        }
        b += w;
        n -= (size_t)w;
    }
}

static void con_config_read(struct virtio_dev *vd, uint32_t off, void *buf, unsigned len)
{
    uint8_t cfg[VIRTIO_CONSOLE_CFG_SIZE] = { 0 };
    uint32_t ports = 1;

    (void)vd;
    memcpy(cfg + VIRTIO_CONSOLE_CFG_MAX_PORTS, &ports, 4);
    memcpy(buf, cfg + off, len);
}

static void con_config_write(struct virtio_dev *vd, uint32_t off, const void *buf,
                             unsigned len)
{
    struct vcon *c = (struct vcon *)vd;

    /* emerg_wr is a le32 whose low byte is the character. */
    if (off == VIRTIO_CONSOLE_CFG_EMERG_WR && len >= 1) {
        con_output(c, buf, 1);
        return;
    }
    virtio_dev_log(vd, "virtio-console: config write at 0x%x ignored", off);
}

static void con_tx(struct vcon *c)
{
    struct virtio_dev *vd = &c->vd;
    int pushed = 0;

    while (virtio_dev_pop(vd, VIRTIO_CONSOLE_TX_Q, &c->chain) > 0) {
        uint64_t len = c->chain.read_len, off = 0;
        if (len > VIRTIO_CONSOLE_TX_MAX) {
            virtio_dev_log(vd, "virtio-console: %llu-byte transmit buffer truncated to %u",
                           (unsigned long long)len, VIRTIO_CONSOLE_TX_MAX);
            len = VIRTIO_CONSOLE_TX_MAX;
        }
        while (off < len) {
            size_t n = len - off > CON_BUF ? CON_BUF : (size_t)(len - off);
            if (vq_chain_read(vd->env.mem, &c->chain, off, c->buf, n))
                break;
            con_output(c, c->buf, n);
            off += n;
        }
        if (virtio_dev_push(vd, VIRTIO_CONSOLE_TX_Q, &c->chain, 0))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VIRTIO_CONSOLE_TX_Q);
}

/* Delivers pending scripted input into as many receive buffers as it needs. */
static void con_rx(struct vcon *c)
{
    struct virtio_dev *vd = &c->vd;
    int pushed = 0;

    while (c->in_pos < c->in_len && virtio_dev_pop(vd, VIRTIO_CONSOLE_RX_Q, &c->chain) > 0) {
        uint64_t n = c->in_len - c->in_pos;
        if (n > c->chain.write_len)
            n = c->chain.write_len;
        if (vq_chain_write(vd->env.mem, &c->chain, 0, c->in + c->in_pos, n))
            n = 0;
        c->in_pos += n;
        if (virtio_dev_push(vd, VIRTIO_CONSOLE_RX_Q, &c->chain, (uint32_t)n))
            return;
        pushed = 1;
    }
    if (pushed)
        virtio_dev_notify_used(vd, VIRTIO_CONSOLE_RX_Q);
}

static void con_notify(struct virtio_dev *vd, unsigned q)
{
    struct vcon *c = (struct vcon *)vd;

    if (q == VIRTIO_CONSOLE_TX_Q)
        con_tx(c);
    else if (q == VIRTIO_CONSOLE_RX_Q)
        con_rx(c);
}

static void con_reset(struct virtio_dev *vd)
{
    /* Input already delivered stays delivered, like bytes sent down a serial line. */
    (void)vd;
}

static const struct virtio_dev_ops con_ops = {
    .device_id = VIRTIO_ID_CONSOLE,
    .num_queues = 2,
    .queue_max = CON_QUEUE_SIZE,
    .config_size = VIRTIO_CONSOLE_CFG_SIZE,
    .config_read = con_config_read,
    .config_write = con_config_write,
    .queue_notify = con_notify,
    .reset = con_reset,
};

static void con_destroy(void *state)
{
    struct vcon *c = state;

    if (!c)
        return;
    if (c->own_fd && c->out_fd >= 0)
        close(c->out_fd);
    free(c->in);
    free(c);
}

static int con_create(const char *args, const struct device_env *env, void **state,
                      char *err, size_t errlen)
{
    static const char *const allowed[] = { "out", "in", "id", NULL };
    char out[DEVICE_ARGS_MAX] = "stdio", in[DEVICE_ARGS_MAX];
    struct vcon *c;
    int rc;

    *state = NULL;
    if ((rc = device_args_check(args, allowed, err, errlen)))
        return rc;
    if (device_arg_get(args, "out", out, sizeof(out)) < 0 ||
        device_arg_get(args, "in", in, sizeof(in)) < 0) {
        snprintf(err, errlen, "virtio-console: argument too long");
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "virtio-console: out of memory");
        return -ENOMEM;
    }
    c->out_fd = -1;
    if (device_arg_get(args, "in", in, sizeof(in)) == 1) {
        c->in = malloc(strlen(in) + 1);
        int n = c->in ? arg_unescape(in, c->in, strlen(in) + 1) : -ENOMEM;
        if (n < 0) {
            snprintf(err, errlen, "virtio-console: in=%s has a bad escape", in);
            con_destroy(c);
            return -EINVAL;
        }
        c->in_len = (size_t)n;
    }
    if (!strcmp(out, "stdio")) {
        c->out_fd = STDOUT_FILENO;
    } else if (strcmp(out, "none")) {
        int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
        c->out_fd = open(out, flags, 0644);
        if (c->out_fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "virtio-console: out=%s: %s", out, strerror(errno));
            c->out_fd = -1;
            con_destroy(c);
            return rc;
        }
        c->own_fd = 1;
    }
    virtio_dev_init(&c->vd, &con_ops, env, VIRTIO_BIT(VIRTIO_CONSOLE_F_EMERG_WRITE));
    *state = c;
    return 0;
}

/* Snapshots: the core, the scripted input position and the output byte count. */
static int con_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct vcon *c = state;

    (void)err;
    (void)errlen;
    virtio_dev_save(&c->vd, w);
    snapshot_put_u64(w, c->in_len);
    snapshot_put_u64(w, c->in_pos);
    snapshot_put_u64(w, c->out_bytes);
    return 0;
}

static int con_load(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct vcon *c = state;
    int rc = virtio_dev_load(&c->vd, r, err, errlen);

    if (rc)
        return rc;
    uint64_t in_len = snapshot_get_u64(r, "console input length");
    uint64_t in_pos = snapshot_get_u64(r, "console input position");
    uint64_t out = snapshot_get_u64(r, "console output bytes");
    rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    if (in_len != c->in_len || in_pos > in_len)
        return snapshot_fail(r, err, errlen, "console input position %llu of %llu bytes does "
                             "not fit this device's %zu-byte scripted input",
                             (unsigned long long)in_pos, (unsigned long long)in_len, c->in_len);
    c->in_pos = (size_t)in_pos;
    c->out_bytes = out;
    return 0;
}

const struct device_type virtio_console_type = {
    .kind = "virtio-console",
    .space = BUS_MMIO,
    .window_size = VIRTIO_MMIO_WINDOW_SIZE,
    .create = con_create,
    .ops = &virtio_mmio_ops,
    .destroy = con_destroy,
    .save = con_save,
    .load = con_load,
    .num_queues = virtio_dev_num_queues,
    .queue_stats = virtio_dev_queue_stats,
    .virtio_id = VIRTIO_ID_CONSOLE,
};
