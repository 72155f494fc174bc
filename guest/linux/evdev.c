/* vmlab-evdev: what a Linux guest's input stack makes of a virtio-input device
 * (tests/cli/linux_input_balloon.sh), run in the busybox initramfs over Debian's
 * virtio_input and evdev drivers.
 *
 *   vmlab-evdev NAME [SYNS]
 *
 * Finds the /dev/input/eventN whose EVIOCGNAME contains NAME, prints its identity and
 * capabilities as evdev reports them (EVIOCGNAME, EVIOCGID, EVIOCGPROP, EVIOCGBIT for the
 * event types, EV_ABS and EV_KEY, EVIOCGABS for every axis), then "EVDEV: ready" and every
 * event it reads, until SYNS SYN_REPORTs (default 2: a tap's press and release) have come.
 * Exit status 0, or 1 with an "EVDEV: error ..." line. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define NBITS(n) (((n) + 8 * sizeof(unsigned long) - 1) / (8 * sizeof(unsigned long)))
#define TEST_BIT(b, a) (((a)[(b) / (8 * sizeof(unsigned long))] >> ((b) % (8 * sizeof(unsigned long)))) & 1)

static int fail(const char *what, const char *path)
{
    printf("EVDEV: error %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

/* "LABEL: 0x1 0x3 (2)": the set bits of a bitmap of n bits, and how many */
static void print_bits(const char *label, const unsigned long *bits, unsigned n)
{
    unsigned count = 0;

    printf("EVDEV: %s:", label);
    for (unsigned i = 0; i < n; i++)
        if (TEST_BIT(i, bits)) {
            printf(" 0x%x", i);
            count++;
        }
    printf(" (%u)\n", count);
}

/* The event device whose name contains `want`: its fd, its path in `path`. The driver's
 * probe may finish after /init loaded the module: look for up to 5 s. */
static int find_device(const char *want, char *path, size_t pathlen, char *name, size_t namelen)
{
    for (int tries = 0; tries < 50; tries++) {
        DIR *d = opendir("/dev/input");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strncmp(e->d_name, "event", 5))
                continue;
            snprintf(path, pathlen, "/dev/input/%s", e->d_name);
            int fd = open(path, O_RDONLY);
            if (fd < 0)
                continue;
            memset(name, 0, namelen);
            if (ioctl(fd, EVIOCGNAME(namelen - 1), name) >= 0 && strstr(name, want)) {
                closedir(d);
                return fd;
            }
            close(fd);
        }
        if (d)
            closedir(d);
        usleep(100000);
    }
    return -1;
}

int main(int argc, char **argv)
{
    char path[280], name[256];
    unsigned long types[NBITS(EV_CNT)] = { 0 }, abs[NBITS(ABS_CNT)] = { 0 },
                  keys[NBITS(KEY_CNT)] = { 0 }, props[NBITS(INPUT_PROP_CNT)] = { 0 };
    struct input_id id;
    long syns = 2;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || argc > 3 || (argc == 3 && (syns = strtol(argv[2], NULL, 0)) <= 0)) {
        fprintf(stderr, "usage: vmlab-evdev NAME [SYNS]\n");
        return 2;
    }
    int fd = find_device(argv[1], path, sizeof(path), name, sizeof(name));
    if (fd < 0) {
        printf("EVDEV: error no /dev/input/event* named '%s'\n", argv[1]);
        return 1;
    }
    printf("EVDEV: %s name \"%s\"\n", path, name);
    if (ioctl(fd, EVIOCGID, &id) < 0)
        return fail("EVIOCGID", path);
    printf("EVDEV: id bus 0x%04x vendor 0x%04x product 0x%04x version 0x%04x\n",
           id.bustype, id.vendor, id.product, id.version);
    if (ioctl(fd, EVIOCGPROP(sizeof(props)), props) < 0)
        return fail("EVIOCGPROP", path);
    print_bits("props", props, INPUT_PROP_CNT);
    if (ioctl(fd, EVIOCGBIT(0, sizeof(types)), types) < 0)
        return fail("EVIOCGBIT(0)", path);
    print_bits("types", types, EV_CNT);
    if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(keys)), keys) < 0)
        return fail("EVIOCGBIT(EV_KEY)", path);
    print_bits("EV_KEY", keys, KEY_CNT);
    if (ioctl(fd, EVIOCGBIT(EV_ABS, sizeof(abs)), abs) < 0)
        return fail("EVIOCGBIT(EV_ABS)", path);
    print_bits("EV_ABS", abs, ABS_CNT);
    for (unsigned a = 0; a < ABS_CNT; a++) {
        struct input_absinfo ai;
        if (!TEST_BIT(a, abs))
            continue;
        if (ioctl(fd, EVIOCGABS(a), &ai) < 0)
            return fail("EVIOCGABS", path);
        printf("EVDEV: abs 0x%02x min %d max %d fuzz %d flat %d res %d\n", a, ai.minimum,
               ai.maximum, ai.fuzz, ai.flat, ai.resolution);
    }
    /* The fd is open: from here on every event the device sends reaches this reader. */
    printf("EVDEV: ready\n");
    fflush(stdout);
    while (syns > 0) {
        struct input_event ev[64];
        ssize_t n = read(fd, ev, sizeof(ev));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || n % sizeof(ev[0]))
            return fail("read", path);
        for (size_t i = 0; i < n / sizeof(ev[0]); i++) {
            printf("EVDEV: event type %u code %u value %d\n", ev[i].type, ev[i].code,
                   ev[i].value);
            if (ev[i].type == EV_SYN && ev[i].code == SYN_REPORT)
                syns--;
        }
    }
    printf("EVDEV: done\n");
    close(fd);
    return 0;
}
