/* A small AML (ACPI Machine Language) byte encoder: the few opcodes a static DSDT needs
 * (Scope, Device, Name, integers, strings, EISA IDs, Buffer) and the resource descriptors
 * of a ResourceTemplate (IO, Memory32Fixed, extended Interrupt, End Tag). Encodings from
 * the ACPI 6.x specification, chapters 6.4 (resource data types) and 20 (AML).
 *
 * Writes go to a caller-supplied buffer; the first write that does not fit sets `overflow`
 * and later writes are dropped, so a builder checks once at the end (aml_finish). */
#ifndef VMLAB_ACPI_AML_H
#define VMLAB_ACPI_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml {
    uint8_t *p;
    size_t len, cap;
    int overflow;       /* a write did not fit */
    int bad_input;      /* a name or EISA ID was malformed */
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* 0, -ENOSPC after an overflow, -EINVAL after a malformed name or ID. */
int aml_finish(const struct aml *a);

void aml_bytes(struct aml *a, const void *p, size_t n);

/* PkgLength (ACPI 20.2.4) for a package whose contents after the PkgLength are `body`
 * bytes; the encoding counts its own bytes. Returns its size (1-4), 0 past 2^28 - 1. */
size_t aml_pkglength_encode(size_t body, uint8_t out[4]);

/* NameString: "\\_SB_", "COM1", "\\_SB_.VR00"; segments of 1-4 characters (A-Z, 0-9, _;
 * not a digit first) are padded with '_'. */
void aml_namestring(struct aml *a, const char *path);
/* The smallest integer encoding: ZeroOp, OneOp, Byte/Word/DWord/QWordConst. */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EisaId("PNP0501"): three letters and four hex digits, as a DWordConst. */
void aml_eisaid(struct aml *a, const char *id);
/* Name(NAME, ...): the value follows (any of the calls above, or aml_buffer). */
void aml_name(struct aml *a, const char *name);
/* Buffer(n) { bytes }. */
void aml_buffer(struct aml *a, const void *bytes, size_t n);

/* Scope(PATH) { ... } and Device(NAME) { ... }: open returns a mark for aml_close, which
 * fills in the PkgLength once the contents are written. */
size_t aml_scope_open(struct aml *a, const char *path);
size_t aml_device_open(struct aml *a, const char *name);
void aml_close(struct aml *a, size_t mark);

/* Resource descriptors, appended to `r` (a ResourceTemplate under construction). */
void aml_res_io16(struct aml *r, uint16_t port, uint8_t len);
void aml_res_mem32_fixed(struct aml *r, uint32_t base, uint32_t len, int writable);
/* Extended Interrupt descriptor, consumer, one interrupt. */
void aml_res_interrupt(struct aml *r, uint32_t gsi, int level, int active_low, int shared);
/* End Tag with checksum 0 ("treat as correct", ACPI 6.4.2.9). */
void aml_res_end(struct aml *r);

#endif
