/* 8250/16550A UART: enough of it for polled guests and for Linux's 8250 driver.
 * Output goes to stdout, a file or nowhere; input is a scripted string, available from the
 * start so that runs are deterministic. */
#include "device.h"
#include "arg_unescape.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef VMLAB_TEST_SANDBOX_TRIGGER
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LCR_DLAB   0x80
#define IER_RDI    0x01
#define IER_THRI   0x02
#define LSR_DR     0x01
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define IIR_NONE   0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_FIFO   0xc0
#define MCR_LOOP   0x10

#define UART_IN_MAX 4096

struct uart {
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    int thri_pending;       /* THR-empty interrupt raised and not yet seen in IIR */
    int irq_level;
    FILE *out;
    int close_out;
    char in[UART_IN_MAX];
    size_t in_len, in_pos;
    struct irq_line irq;
#ifdef VMLAB_TEST_DEVICE_BUG
    unsigned test_bug_reads;
#endif
#ifdef VMLAB_TEST_SANDBOX_TRIGGER
    int test_trigger_fired;
#endif
};

static void uart_update_irq(struct uart *u)
{
    int level = ((u->ier & IER_RDI) && u->in_pos < u->in_len) ||
                ((u->ier & IER_THRI) && u->thri_pending);
    if (level != u->irq_level) {
        u->irq_level = level;
        irq_line_set(&u->irq, level);
    }
}

static uint8_t uart_iir(struct uart *u)
{
    uint8_t fifo = (u->fcr & 1) ? IIR_FIFO : 0;

    if ((u->ier & IER_RDI) && u->in_pos < u->in_len)
        return IIR_RDI | fifo;
    if ((u->ier & IER_THRI) && u->thri_pending)
        return IIR_THRI | fifo;
    return IIR_NONE | fifo;
}

static int uart_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    struct uart *u = opaque;
    uint8_t v = 0;

    (void)size;
    switch (off) {
    case RBR_THR:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else if (u->in_pos < u->in_len) {
            v = (uint8_t)u->in[u->in_pos++];
        }
        break;
    case IER:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case IIR_FCR:
        v = uart_iir(u);
        if ((v & 0x0f) == IIR_THRI)
            u->thri_pending = 0;    /* reading IIR with THRI showing clears it */
        break;
    case LCR: v = u->lcr; break;
    case MCR: v = u->mcr; break;
    case LSR:
        v = LSR_THRE | LSR_TEMT | (u->in_pos < u->in_len ? LSR_DR : 0);
#ifdef VMLAB_TEST_DEVICE_BUG
        /* Test-only build (never in production): a deliberate device bug, every 16th LSR
         * read claims the transmitter is busy. Shows that a trace recorded from a buggy
         * run reproduces the bug on replay (tests/cli/trace_bug_repro.sh). */
        if (++u->test_bug_reads % 16 == 0)
            v &= (uint8_t)~(LSR_THRE | LSR_TEMT);
#endif
        break;
    case MSR:
        /* Loopback reflects MCR outputs; otherwise report carrier, DSR and CTS present. */
        v = (u->mcr & MCR_LOOP) ? (uint8_t)((u->mcr & 0x0f) << 4) : 0xb0;
        break;
    case SCR: v = u->scr; break;
    default: break;
    }
    *value = v;
    uart_update_irq(u);
    return 0;
}

static int uart_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct uart *u = opaque;
    uint8_t v = (uint8_t)value;

    (void)size;
    switch (off) {
    case RBR_THR:
        if (u->lcr & LCR_DLAB) {
            u->dll = v;
        } else {
            if (u->out && !(u->mcr & MCR_LOOP)) {
                fputc(v, u->out);
                if (v == '\n')
                    fflush(u->out);
            }
#ifdef VMLAB_TEST_SANDBOX_TRIGGER
            /* Test-only build (never in production): at the end of the guest's first line
             * the device opens a network socket, a call outside the VM sandbox's
             * allow-list: sandboxed, the VM process dies of SIGSYS
             * (tests/cli/virtmgr_sandbox.sh); unsandboxed, nothing changes. */
            if (v == '\n' && !u->test_trigger_fired) {
                u->test_trigger_fired = 1;
                long fd = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
                if (fd >= 0)
                    close((int)fd);
            }
#endif
            u->thri_pending = 1;
        }
        break;
    case IER:
        if (u->lcr & LCR_DLAB) {
            u->dlm = v;
        } else {
            /* Enabling THRI with the transmitter empty raises it at once, as on hardware. */
            if ((v & IER_THRI) && !(u->ier & IER_THRI))
                u->thri_pending = 1;
            u->ier = v & 0x0f;
        }
        break;
    case IIR_FCR: u->fcr = v; break;
    case LCR: u->lcr = v; break;
    case MCR: u->mcr = v & 0x1f; break;
    case SCR: u->scr = v; break;
    default: break;     /* LSR/MSR are read-only */
    }
    uart_update_irq(u);
    return 0;
}

static const struct bus_ops uart_ops = { uart_read, uart_write };

/* Snapshots: registers, pending THRI, the line level, the scripted input position (the
 * input itself comes back from the device args). */
static int uart_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct uart *u = state;
    const uint8_t regs[7] = { u->ier, u->lcr, u->mcr, u->scr, u->fcr, u->dll, u->dlm };

    (void)err;
    (void)errlen;
    if (u->out)
        fflush(u->out);
    snapshot_put_bytes(w, regs, sizeof(regs));
    snapshot_put_u8(w, (uint8_t)(u->thri_pending ? 1 : 0));
    snapshot_put_u8(w, (uint8_t)(u->irq_level ? 1 : 0));
    snapshot_put_u64(w, u->in_len);
    snapshot_put_u64(w, u->in_pos);
    return 0;
}

static int uart_load(void *state, struct snapshot_reader *r, char *err, size_t errlen)
{
    struct uart *u = state;
    uint8_t regs[7];

    snapshot_get_bytes(r, regs, sizeof(regs), "uart registers");
    u->ier = regs[0] & 0x0f;
    u->lcr = regs[1];
    u->mcr = regs[2] & 0x1f;
    u->scr = regs[3];
    u->fcr = regs[4];
    u->dll = regs[5];
    u->dlm = regs[6];
    u->thri_pending = snapshot_get_u8(r, "uart thri_pending") ? 1 : 0;
    u->irq_level = snapshot_get_u8(r, "uart irq level") ? 1 : 0;
    uint64_t in_len = snapshot_get_u64(r, "uart input length");
    uint64_t in_pos = snapshot_get_u64(r, "uart input position");
    int rc = snapshot_check(r, err, errlen);
    if (rc)
        return rc;
    if (in_len != u->in_len || in_pos > in_len)
        return snapshot_fail(r, err, errlen, "uart input position %llu of %llu bytes does not "
                             "fit this device's %zu-byte scripted input",
                             (unsigned long long)in_pos, (unsigned long long)in_len, u->in_len);
    u->in_pos = (size_t)in_pos;
    return 0;
}

static int uart_create(const char *args, const struct device_env *env, void **state,
                       char *err, size_t errlen)
{
    static const char *const allowed[] = { "out", "in", "id", NULL };
    char out[256] = "stdio", in_raw[UART_IN_MAX];
    int rc = device_args_check(args, allowed, err, errlen);
    struct uart *u;

    if (rc)
        return rc;
    if (device_arg_get(args, "out", out, sizeof(out)) < 0) {
        snprintf(err, errlen, "uart8250: out= path is too long");
        return -EINVAL;
    }
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    rc = device_arg_get(args, "in", in_raw, sizeof(in_raw));
    if (rc == 1) {
        int n = arg_unescape(in_raw, u->in, sizeof(u->in));
        if (n < 0) {
            snprintf(err, errlen, "uart8250: in= has a bad escape or is too long: '%.40s'",
                     in_raw);
            free(u);
            return -EINVAL;
        }
        u->in_len = (size_t)n;
    } else if (rc < 0) {
        snprintf(err, errlen, "uart8250: in= is longer than %d bytes", UART_IN_MAX - 1);
        free(u);
        return -EINVAL;
    }
    if (!strcmp(out, "stdio")) {
        u->out = stdout;
    } else if (strcmp(out, "none") != 0) {
        u->out = fopen(out, "w");
        if (!u->out) {
            rc = -errno;
            snprintf(err, errlen, "uart8250: out=%s: %s", out, strerror(errno));
            free(u);
            return rc;
        }
        u->close_out = 1;
    }
    u->irq = env->irq;
    *state = u;
    return 0;
}

static void uart_destroy(void *state)
{
    struct uart *u = state;

    if (u->out) {
        fflush(u->out);
        if (u->close_out)
            fclose(u->out);
    }
    free(u);
}

const struct device_type uart8250_type = {
    .kind = "uart8250",
    .space = BUS_PIO,
    .window_size = 8,
    .create = uart_create,
    .ops = &uart_ops,
    .destroy = uart_destroy,
    .save = uart_save,
    .load = uart_load,
};
