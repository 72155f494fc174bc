/* GUID partition tables: building them for composite disks, reading them for `disk info`. */
#ifndef VMLAB_GPT_H
#define VMLAB_GPT_H

#include <stddef.h>
#include <stdint.h>
#include "devices/disk/disk.h"

#define GPT_SECTOR 512u
#define GPT_NUM_ENTRIES 128u
#define GPT_ENTRY_SIZE 128u
#define GPT_HEADER_SIZE 92u
#define GPT_ENTRIES_BYTES (GPT_NUM_ENTRIES * GPT_ENTRY_SIZE)
#define GPT_BEGIN_SIZE (40u * GPT_SECTOR)       /* MBR + header + entries + alignment pad */
#define GPT_END_SIZE (33u * GPT_SECTOR)         /* backup entries + backup header */
#define GPT_NAME_UNITS 36u

/* A GUID in RFC 4122 byte order (as printed); GPT stores the first three fields
 * little-endian, gpt_guid_to_disk converts. */
struct gpt_guid { uint8_t b[16]; };

extern const struct gpt_guid GPT_TYPE_LINUX_FS;   /* 0FC63DAF-8483-4772-8E79-3D69D8477DE4 */
extern const struct gpt_guid GPT_TYPE_EFI_SYSTEM; /* C12A7328-F81F-11D2-BA4B-00A0C93EC93B */

uint32_t gpt_crc32(const void *buf, size_t len);
uint32_t gpt_crc32_update(uint32_t crc, const void *buf, size_t len);
/* 0 or -EINVAL: "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" (any case). */
int gpt_guid_parse(const char *s, struct gpt_guid *g);
void gpt_guid_format(const struct gpt_guid *g, char out[37]);
/* Deterministic GUID from strings (a name-based GUID: version 8, RFC variant). */
void gpt_guid_from_names(struct gpt_guid *g, const char *a, const char *b, const char *c);
void gpt_guid_to_disk(const struct gpt_guid *g, uint8_t out[16]);
void gpt_guid_from_disk(const uint8_t in[16], struct gpt_guid *g);

struct gpt_part {
    struct gpt_guid type, unique;
    uint64_t first_lba, last_lba, attributes;
    char name[GPT_NAME_UNITS * 3 + 1];     /* UTF-8 */
};

/* Encodes entry into 128 bytes; -EINVAL if the name does not fit 36 UTF-16 units. */
int gpt_entry_encode(const struct gpt_part *p, uint8_t out[GPT_ENTRY_SIZE]);
/* Protective MBR for a disk of `sectors` sectors. */
void gpt_mbr_encode(uint64_t sectors, uint8_t out[GPT_SECTOR]);
/* A header sector (92 bytes used, rest zero) with both CRCs filled in. */
void gpt_header_encode(uint8_t out[GPT_SECTOR], const struct gpt_guid *disk_guid,
                       uint64_t current_lba, uint64_t backup_lba, uint64_t first_usable,
                       uint64_t last_usable, uint64_t entries_lba, uint32_t entries_crc);

/* Reads the primary GPT of a disk: up to max partitions (non-empty entries) into parts.
 * Returns the count, or -errno with err set (no GPT, bad CRC, ...). */
int gpt_read(struct disk *d, struct gpt_part *parts, int max, struct gpt_guid *disk_guid,
             char *err, size_t errlen);

#endif
