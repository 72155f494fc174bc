/* The MC146818 CMOS real-time clock of a PC at ports 0x70 (register index) and 0x71 (data),
 * counting on the VMM's clock from a fixed base time (args base=SECONDS since 1970 UTC,
 * `vmlab run --rtc-base`): on the software CPU the guest reads the same date at the same
 * instruction in every run. Linux reads it once at boot for the wall clock.
 *
 * Modelled: seconds, minutes, hours (24 h, or 12 h with the PM bit), day of week, day of
 * month, month, year and century (register 0x32), in BCD or binary (register B's DM bit);
 * setting the time (register B's SET bit stops the update, the time written counts from
 * when it is cleared; a write while running takes effect at once); the 128 bytes of CMOS
 * RAM and the alarm registers as storage; status A with update-in-progress always clear
 * (the guest never waits), status D reporting valid RAM and time. Not modelled: the
 * periodic, alarm and update interrupts (the machine is hardware-reduced ACPI: no IRQ 8;
 * register C reads 0), the divider chain (register A is storage), daylight saving. */
#include "device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/snapshot.h"

#define RTC_INDEX       0           /* port 0x70 */
#define RTC_DATA        1           /* port 0x71 */
#define REG_SEC         0x00
#define REG_MIN         0x02
#define REG_HOUR        0x04
#define REG_WDAY        0x06
#define REG_MDAY        0x07
#define REG_MON         0x08
#define REG_YEAR        0x09
#define REG_A           0x0a
#define REG_B           0x0b
#define REG_C           0x0c
#define REG_D           0x0d
#define REG_CENTURY     0x32
#define B_SET           0x80
#define B_DM_BINARY     0x04
#define B_24H           0x02
#define D_VRT           0x80
#define HOUR_PM         0x80
#define RTC_MAX_BASE    4102444799ULL   /* 2099-12-31 23:59:59: two-digit years, century 20 */
#define RTC_DEFAULT_BASE 1767225600ULL  /* 2026-01-01 00:00:00 UTC */

struct rtc {
    const struct clock *clock;
    int64_t offset;                 /* guest time in s = offset + clock seconds */
    uint8_t index;
    uint8_t ram[128];               /* time registers hold the time only while SET */
};

static int64_t clock_s(const struct rtc *r) { return (int64_t)(clock_now_ns(r->clock) / 1000000000ULL); }

static uint8_t to_bcd(unsigned v) { return (uint8_t)((v / 10) << 4 | v % 10); }
static unsigned from_bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0xf); }

static uint8_t enc(const struct rtc *r, unsigned v)
{
    return r->ram[REG_B] & B_DM_BINARY ? (uint8_t)v : to_bcd(v);
}

static unsigned dec(const struct rtc *r, uint8_t v)
{
    return r->ram[REG_B] & B_DM_BINARY ? v : from_bcd(v);
}

/* The running time into the time registers (what a read shows). */
static void time_to_regs(struct rtc *r, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    r->ram[REG_SEC] = enc(r, (unsigned)tm.tm_sec);
    r->ram[REG_MIN] = enc(r, (unsigned)tm.tm_min);
    if (r->ram[REG_B] & B_24H) {
        r->ram[REG_HOUR] = enc(r, (unsigned)tm.tm_hour);
    } else {
        unsigned h = (unsigned)tm.tm_hour % 12;
        r->ram[REG_HOUR] = (uint8_t)(enc(r, h ? h : 12) | (tm.tm_hour >= 12 ? HOUR_PM : 0));
    }
    r->ram[REG_WDAY] = enc(r, (unsigned)tm.tm_wday + 1);     /* 1 = Sunday */
    r->ram[REG_MDAY] = enc(r, (unsigned)tm.tm_mday);
    r->ram[REG_MON] = enc(r, (unsigned)tm.tm_mon + 1);
    r->ram[REG_YEAR] = enc(r, (unsigned)(tm.tm_year + 1900) % 100);
    r->ram[REG_CENTURY] = enc(r, (unsigned)(tm.tm_year + 1900) / 100);
}

/* The time registers as a time; -1 when they do not hold a valid date. */
static int64_t regs_to_time(const struct rtc *r)
{
    struct tm tm;
    uint8_t hr = r->ram[REG_HOUR];
    unsigned hour;

    if (r->ram[REG_B] & B_24H) {
        hour = dec(r, hr);
    } else {
        unsigned h = dec(r, hr & ~HOUR_PM);
        if (h < 1 || h > 12)
            return -1;
        hour = h % 12 + (hr & HOUR_PM ? 12 : 0);
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_sec = (int)dec(r, r->ram[REG_SEC]);
    tm.tm_min = (int)dec(r, r->ram[REG_MIN]);
    tm.tm_hour = (int)hour;
    tm.tm_mday = (int)dec(r, r->ram[REG_MDAY]);
    tm.tm_mon = (int)dec(r, r->ram[REG_MON]) - 1;
    unsigned year = dec(r, r->ram[REG_CENTURY]) * 100 + dec(r, r->ram[REG_YEAR]);
    tm.tm_year = (int)year - 1900;
    if (tm.tm_sec > 59 || tm.tm_min > 59 || tm.tm_hour > 23 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_mon < 0 || tm.tm_mon > 11 || year < 1970 || year > 2099)
        return -1;
    int mday = tm.tm_mday;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != mday)                 /* 31 February */
        return -1;
    return (int64_t)t;
}

/* Time registers written: the clock counts on from what they say (a bad date changes
 * nothing, as a real chip would keep counting something). */
static void regs_set_time(struct rtc *r)
{
    int64_t t = regs_to_time(r);
    if (t >= 0)
        r->offset = t - clock_s(r);
}

static int is_time_reg(uint8_t reg)
{
    return reg == REG_SEC || reg == REG_MIN || reg == REG_HOUR || reg == REG_WDAY ||
           reg == REG_MDAY || reg == REG_MON || reg == REG_YEAR || reg == REG_CENTURY;
}

static int rtc_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    struct rtc *r = opaque;
    uint8_t reg = r->index;

    (void)size;
    if (off == RTC_INDEX) {
        *value = r->index;
        return 0;
    }
    if (is_time_reg(reg) && !(r->ram[REG_B] & B_SET))
        time_to_regs(r, r->offset + clock_s(r));
    switch (reg) {
    case REG_A: *value = r->ram[REG_A] & 0x7f; break;      /* update never in progress */
    case REG_C: *value = 0; break;                          /* no interrupt flags */
    case REG_D: *value = D_VRT; break;
    default:    *value = r->ram[reg]; break;
    }
    return 0;
}

static int rtc_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct rtc *r = opaque;
    uint8_t v = (uint8_t)value, reg = r->index;

    (void)size;
    if (off == RTC_INDEX) {
        r->index = v & 0x7f;                                /* bit 7: NMI mask, not modelled */
        return 0;
    }
    if (reg == REG_B) {
        int was_set = r->ram[REG_B] & B_SET;
        if (!was_set)                   /* the registers hold the time in the old format */
            time_to_regs(r, r->offset + clock_s(r));
        int64_t t = regs_to_time(r);
        r->ram[REG_B] = v;
        if (t >= 0)                     /* same time, new format (BCD/binary, 12/24 h) */
            time_to_regs(r, t);
        if (was_set && !(v & B_SET))
            regs_set_time(r);
    } else if (is_time_reg(reg)) {
        int running = !(r->ram[REG_B] & B_SET);
        if (running)
            time_to_regs(r, r->offset + clock_s(r));
        r->ram[reg] = v;
        if (running)
            regs_set_time(r);
    } else if (reg != REG_C && reg != REG_D) {              /* C and D are read-only */
        r->ram[reg] = reg == REG_A ? (uint8_t)(v & 0x7f) : v;
    }
    return 0;
}

static const struct bus_ops rtc_ops = { rtc_read, rtc_write };

/* ---- snapshots: the time offset, the index and the CMOS bytes ---- */

static int rtc_save(void *state, struct snapshot_writer *w, char *err, size_t errlen)
{
    struct rtc *r = state;

    (void)err;
    (void)errlen;
    snapshot_put_u64(w, (uint64_t)r->offset);
    snapshot_put_bytes(w, &r->index, 1);
    snapshot_put_bytes(w, r->ram, sizeof(r->ram));
    return 0;
}

static int rtc_load(void *state, struct snapshot_reader *rd, char *err, size_t errlen)
{
    struct rtc *r = state;
    uint8_t index, ram[128];
    int64_t offset = (int64_t)snapshot_get_u64(rd, "rtc offset");

    snapshot_get_bytes(rd, &index, 1, "rtc index");
    snapshot_get_bytes(rd, ram, sizeof(ram), "rtc cmos");
    int rc = snapshot_check(rd, err, errlen);
    if (rc)
        return rc;
    if (index > 0x7f)
        return snapshot_fail(rd, err, errlen, "rtc index %u out of range", index);
    r->offset = offset;
    r->index = index;
    memcpy(r->ram, ram, sizeof(ram));
    return 0;
}

static int rtc_create(const char *args, const struct device_env *env, void **state, char *err,
                      size_t errlen)
{
    static const char *const allowed[] = { "id", "base", NULL };
    char v[32];
    uint64_t base = RTC_DEFAULT_BASE;
    int rc = device_args_check(args, allowed, err, errlen);

    if (rc)
        return rc;
    if (device_arg_get(args, "base", v, sizeof(v)) == 1) {
        char *end;
        errno = 0;
        unsigned long long b = strtoull(v, &end, 10);
        if (!v[0] || *end || errno || v[0] == '-' || b > RTC_MAX_BASE) {
            snprintf(err, errlen, "cmos-rtc base '%s': not seconds since 1970 up to %llu "
                     "(2099-12-31 23:59:59 UTC)", v, RTC_MAX_BASE);
            return -EINVAL;
        }
        base = b;
    }
    struct rtc *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->clock = env->clock;
    r->ram[REG_A] = 0x26;           /* 32.768 kHz time base, 1024 Hz rate: the BIOS's value */
    r->ram[REG_B] = B_24H;          /* 24 h, BCD */
    r->offset = (int64_t)base - clock_s(r);
    *state = r;
    return 0;
}

const struct device_type cmos_rtc_type = {
    .kind = "cmos-rtc",
    .space = BUS_PIO,
    .window_size = 2,
    .create = rtc_create,
    .ops = &rtc_ops,
    .destroy = free,
    .save = rtc_save,
    .load = rtc_load,
};
