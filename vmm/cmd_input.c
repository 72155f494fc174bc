/* `vmlab input SOCKET GESTURE ...`: touch and keyboard gestures turned into evdev events
 * and sent to a running VM's input device with the control socket's `input` request.
 * A tap and a swipe carry both the multi-touch (type B slot 0) and the single-touch axes;
 * a device takes what it offers (the Linux input core drops codes a device lacks). */
#include "cmd_control.h"
#include "control_proto.h"
#include "devices/virtio/virtio_input.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define KEY_LEFTSHIFT 42
#define SWIPE_HZ 60
#define SWIPE_MAX_MS 1000


static int add(struct control_request *r, uint16_t type, uint16_t code, int32_t value)
{
    uint8_t *p;

    if (r->nevents == CONTROL_MAX_EVENTS)
        return -ENOSPC;
    p = r->events + r->nevents++ * CONTROL_EVENT_SIZE;
    memcpy(p, &type, 2);
    memcpy(p + 2, &code, 2);
    memcpy(p + 4, &value, 4);
    return 0;
}

static void touch_at(struct control_request *r, int32_t x, int32_t y)
{
    add(r, EV_ABS, ABS_MT_POSITION_X, x);
    add(r, EV_ABS, ABS_MT_POSITION_Y, y);
    add(r, EV_ABS, ABS_X, x);
    add(r, EV_ABS, ABS_Y, y);
}

static void touch_down(struct control_request *r, int32_t x, int32_t y)
{
    add(r, EV_ABS, ABS_MT_SLOT, 0);
    add(r, EV_ABS, ABS_MT_TRACKING_ID, 1);
    touch_at(r, x, y);
    add(r, EV_KEY, BTN_TOUCH, 1);
    add(r, EV_SYN, SYN_REPORT, 0);
}

static void touch_up(struct control_request *r)
{
    add(r, EV_ABS, ABS_MT_TRACKING_ID, -1);
    add(r, EV_KEY, BTN_TOUCH, 0);
    add(r, EV_SYN, SYN_REPORT, 0);
}

static void key(struct control_request *r, uint16_t code, int shift)
{
    if (shift)
        add(r, EV_KEY, KEY_LEFTSHIFT, 1);
    add(r, EV_KEY, code, 1);
    add(r, EV_SYN, SYN_REPORT, 0);
    add(r, EV_KEY, code, 0);
    if (shift)
        add(r, EV_KEY, KEY_LEFTSHIFT, 0);
    add(r, EV_SYN, SYN_REPORT, 0);
}

/* US layout: the key code of an ASCII character and whether it needs shift; 0 if none. */
static uint16_t ascii_key(unsigned char c, int *shift)
{
    static const char row1[] = "1234567890-=", row1s[] = "!@#$%^&*()_+";
    static const char qrow[] = "qwertyuiop[]", arow[] = "asdfghjkl;'`", zrow[] = "zxcvbnm,./";
    static const char qrows[] = "QWERTYUIOP{}", arows[] = "ASDFGHJKL:\"~", zrows[] = "ZXCVBNM<>?";
    const char *p;

    *shift = 0;
    if (c == ' ') return 57;
    if (c == '\n') return 28;
    if (c == '\t') return 15;
    if (c == '\\') return 43;
    if (c == '|') { *shift = 1; return 43; }
    if (!c)
        return 0;
    if ((p = strchr(row1, c))) return (uint16_t)(2 + (p - row1));
    if ((p = strchr(qrow, c))) return (uint16_t)(16 + (p - qrow));
    if ((p = strchr(arow, c))) return (uint16_t)(30 + (p - arow));
    if ((p = strchr(zrow, c))) return (uint16_t)(44 + (p - zrow));
    *shift = 1;
    if ((p = strchr(row1s, c))) return (uint16_t)(2 + (p - row1s));
    if ((p = strchr(qrows, c))) return (uint16_t)(16 + (p - qrows));
    if ((p = strchr(arows, c))) return (uint16_t)(30 + (p - arows));
    if ((p = strchr(zrows, c))) return (uint16_t)(44 + (p - zrows));
    return 0;
}

static int parse_num(const char *what, const char *s, long min, long max, long *out)
{
    char *end;

    errno = 0;
    long v = strtol(s, &end, 10);
    if (!s[0] || *end || errno || v < min || v > max) {
        fprintf(stderr, "vmlab: input: %s \"%s\" is not an integer in %ld..%ld\n", what, s,
                min, max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: vmlab input SOCKET [--index N] [--json] [--timeout SECONDS] GESTURE\n"
          "Sends input to a running VM's virtio-input device N (default 0, in --input order).\n"
          "GESTURE:\n"
          "  tap X Y                 touch down and up at (X, Y)\n"
          "  swipe X1 Y1 X2 Y2 MS    touch down at (X1, Y1), move to (X2, Y2) in MS\n"
          "                          milliseconds (1..1000) at 60 frames a second, lift\n"
          "  key CODE                press and release Linux key code CODE (1..767)\n"
          "  text STRING             type STRING (printable ASCII, US layout)\n"
          "Frames are delivered at exact virtual times from the request on the software CPU.\n"
          "Exit status: 0 done, 1 refused by the VM, 2 bad command line, 3 VM unreachable.\n",
          f);
}

int cmd_input(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' },
        { "index", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct control_request *req;
    struct json_object *reqj = NULL, *resp = NULL;
    int json = 0, opt, status = 2;
    long timeout_s = 10, index = 0, v[5];

    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 't':
            if (parse_num("--timeout", optarg, 1, 86400, &timeout_s))
                return 2;
            break;
        case 'i':
            if (parse_num("--index", optarg, 0, CONTROL_MAX_INDEX, &index))
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "vmlab: input: option '%s' needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "vmlab: input: unknown option '%s' (see vmlab input --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    char **pos = argv + optind;
    int npos = argc - optind;
    static const struct { const char *name; int nargs; } gestures[] = {
        { "tap", 2 }, { "swipe", 5 }, { "key", 1 }, { "text", 1 },
    };
    unsigned g;
    if (npos < 2) {
        fprintf(stderr, "vmlab: input: expected SOCKET GESTURE ... (see vmlab input --help)\n");
        return 2;
    }
    for (g = 0; g < 4 && strcmp(gestures[g].name, pos[1]); g++)
        ;
    if (g == 4) {
        fprintf(stderr, "vmlab: input: unknown gesture \"%s\" (expected tap, swipe, key or "
                "text)\n", pos[1]);
        return 2;
    }
    if (npos != 2 + gestures[g].nargs) {
        fprintf(stderr, "vmlab: input: %s takes %d argument%s, got %d\n", gestures[g].name,
                gestures[g].nargs, gestures[g].nargs == 1 ? "" : "s", npos - 2);
        return 2;
    }
    req = calloc(1, sizeof(*req));
    if (!req)
        return 3;
    req->cmd = CONTROL_INPUT;
    req->index = (unsigned)index;
    switch (g) {
    case 0:     /* tap */
        if (parse_num("X", pos[2], 0, 65535, &v[0]) || parse_num("Y", pos[3], 0, 65535, &v[1]))
            goto out;
        touch_down(req, (int32_t)v[0], (int32_t)v[1]);
        touch_up(req);
        break;
    case 1: {   /* swipe */
        static const char *const names[5] = { "X1", "Y1", "X2", "Y2", "MS" };
        for (int i = 0; i < 5; i++)
            if (parse_num(names[i], pos[2 + i], i == 4 ? 1 : 0, i == 4 ? SWIPE_MAX_MS : 65535,
                          &v[i]))
                goto out;
        long frames = (v[4] * SWIPE_HZ + 999) / 1000;
        req->frame_ns = (uint64_t)v[4] * 1000000 / (uint64_t)frames;
        touch_down(req, (int32_t)v[0], (int32_t)v[1]);
        for (long k = 1; k <= frames; k++) {
            touch_at(req, (int32_t)(v[0] + (v[2] - v[0]) * k / frames),
                     (int32_t)(v[1] + (v[3] - v[1]) * k / frames));
            if (k < frames)
                add(req, EV_SYN, SYN_REPORT, 0);
        }
        touch_up(req);
        break;
    }
    case 2:     /* key */
        if (parse_num("CODE", pos[2], 1, VIRTIO_INPUT_KEY_MAX, &v[0]))
            goto out;
        key(req, (uint16_t)v[0], 0);
        break;
    case 3:     /* text */
        if (!pos[2][0]) {
            fprintf(stderr, "vmlab: input: text STRING is empty\n");
            goto out;
        }
        for (const unsigned char *c = (const unsigned char *)pos[2]; *c; c++) {
            int shift;
            uint16_t code = ascii_key(*c, &shift);
            if (!code) {
                fprintf(stderr, "vmlab: input: text: character 0x%02x at byte %zu has no key "
                        "on a US keyboard\n", *c, (size_t)(c - (const unsigned char *)pos[2]));
                goto out;
            }
            if (req->nevents + 6 > CONTROL_MAX_EVENTS) {
                fprintf(stderr, "vmlab: input: text: longer than %d characters\n",
                        CONTROL_MAX_EVENTS / 6);
                goto out;
            }
            key(req, code, shift);
        }
        break;
    }
    reqj = control_request_to_json(req);
    status = 3;
    if (!reqj)
        goto out;
    status = control_client_call("input", pos[0], json_object_to_json_string_ext(
                                     reqj, JSON_C_TO_STRING_PLAIN), (int)timeout_s, json, &resp);
    if (status == 0 && !json)
        printf("%u input events sent\n", req->nevents);
out:
    json_object_put(resp);
    json_object_put(reqj);
    free(req);
    return status;
}
