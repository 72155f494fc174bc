#include "arg_unescape.h"

#include <errno.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int arg_unescape(const char *in, char *out, size_t outlen)
{
    size_t n = 0;

    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case '\\': c = '\\'; break;
            case 'x': {
                int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
                if (hi < 0 || lo < 0)
                    return -EINVAL;
                c = (char)(hi << 4 | lo);
                p += 2;
                break;
            }
            default:
                return -EINVAL;
            }
        }
        if (n + 1 >= outlen)
            return -EINVAL;
        out[n++] = c;
    }
    if (outlen)
        out[n] = '\0';
    return (int)n;
}
