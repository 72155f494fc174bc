/* printf family: %d %i %u %x %X %o %s %c %p %% with l/ll/z/h flags, width, '0' and '-'. */
#include "rt_internal.h"

static int emit_pad(rt_out_fn out, void *ctx, char c, int n)
{
    for (int i = 0; i < n; i++)
        out(c, ctx);
    return n > 0 ? n : 0;
}

int rt_vformat(rt_out_fn out, void *ctx, const char *fmt, va_list ap)
{
    int count = 0;

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out(*fmt, ctx);
            count++;
            continue;
        }
        fmt++;
        int left = 0, zero = 0, width = 0, lng = 0, prec = -1;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                zero = 1;
            else
                break;
        }
        if (*fmt == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                left = 1;
                width = -width;
            }
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') {
                prec = va_arg(ap, int);
                fmt++;
            }
            while (*fmt >= '0' && *fmt <= '9')
                prec = prec * 10 + (*fmt++ - '0');
        }
        for (;; fmt++) {
            if (*fmt == 'l')
                lng++;
            else if (*fmt == 'z')
                lng = 2;
            else if (*fmt == 'h')
                ;
            else
                break;
        }
        if (!*fmt)
            break;

        char buf[24];
        const char *s = buf;
        int len = 0, neg = 0;
        unsigned long long v = 0;
        unsigned base = 10;
        int upper = 0, prefix0x = 0;

        switch (*fmt) {
        case '%':
            out('%', ctx);
            count++;
            continue;
        case 'c':
            buf[0] = (char)va_arg(ap, int);
            len = 1;
            zero = 0;
            break;
        case 's':
            s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            len = (int)(prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s));
            zero = 0;
            break;
        case 'd':
        case 'i': {
            long long sv = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
            neg = sv < 0;
            v = neg ? 0ull - (unsigned long long)sv : (unsigned long long)sv;
            goto number;
        }
        case 'p':
            v = (uintptr_t)va_arg(ap, void *);
            base = 16;
            prefix0x = 1;
            goto number;
        case 'X':
            upper = 1;
            /* fall through */
        case 'x':
            base = 16;
            /* fall through */
        case 'o':
            if (*fmt == 'o')
                base = 8;
            /* fall through */
        case 'u':
            v = lng >= 2 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        number: {
            const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
            char *e = buf + sizeof buf;
            char *p = e;
            do {
                *--p = digits[v % base];
                v /= base;
            } while (v);
            s = p;
            len = (int)(e - p);
            break;
        }
        default:        /* unknown conversion: print it literally */
            out('%', ctx);
            out(*fmt, ctx);
            count += 2;
            continue;
        }

        int extra = neg + 2 * prefix0x;
        int pad = width - len - extra;
        if (!left && !zero)
            count += emit_pad(out, ctx, ' ', pad);
        if (neg) {
            out('-', ctx);
            count++;
        }
        if (prefix0x) {
            out('0', ctx);
            out('x', ctx);
            count += 2;
        }
        if (!left && zero)
            count += emit_pad(out, ctx, '0', pad);
        for (int i = 0; i < len; i++)
            out(s[i], ctx);
        count += len;
        if (left)
            count += emit_pad(out, ctx, ' ', pad);
    }
    return count;
}

static void out_console(char c, void *ctx)
{
    (void)ctx;
    rt_putc(c);
}

struct sbuf {
    char *b;
    size_t n, pos;
};

static void out_buf(char c, void *ctx)
{
    struct sbuf *sb = ctx;
    if (sb->pos + 1 < sb->n)
        sb->b[sb->pos] = c;
    sb->pos++;
}

int vsnprintf(char *b, size_t n, const char *fmt, va_list ap)
{
    struct sbuf sb = { b, n, 0 };
    int r = rt_vformat(out_buf, &sb, fmt, ap);
    if (n)
        b[sb.pos < n ? sb.pos : n - 1] = 0;
    return r;
}

int snprintf(char *b, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(b, n, fmt, ap);
    va_end(ap);
    return r;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = rt_vformat(out_console, NULL, fmt, ap);
    va_end(ap);
    return r;
}
