/* Linux arm64 Image loader (loader_arm64.h). */
#include "loader_arm64.h"
#include "loader_pvh.h"
#include "memmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PAGE 0x1000ULL

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int loader_arm64_parse(const uint8_t *img, size_t len, struct arm64_image_header *h,
                       char *err, size_t errlen)
{
    if (len < ARM64_IMAGE_HEADER_SIZE) {
        snprintf(err, errlen, "arm64 Image: %zu bytes, the header needs %d (truncated?)", len,
                 ARM64_IMAGE_HEADER_SIZE);
        return -ENOEXEC;
    }
    uint32_t magic = (uint32_t)rd64(img + 56);
    if (magic != ARM64_IMAGE_MAGIC) {
        snprintf(err, errlen, "arm64 Image header: magic at offset 56 is %#x, expected %#x "
                 "(\"ARM\\x64\"): not an arm64 Linux Image", magic, ARM64_IMAGE_MAGIC);
        return -ENOEXEC;
    }
    h->text_offset = rd64(img + 8);
    h->image_size = rd64(img + 16);
    h->flags = rd64(img + 24);
    if (h->image_size == 0) {
        /* Kernels before 3.17 leave it 0 and need guessing; vmlab does not guess. */
        snprintf(err, errlen, "arm64 Image header: image_size is 0 (a kernel older than "
                 "Linux 3.17), which vmlab does not load");
        return -ENOEXEC;
    }
    if (h->image_size < len) {
        snprintf(err, errlen, "arm64 Image header: image_size %#llx is smaller than the "
                 "file's %zu bytes", (unsigned long long)h->image_size, len);
        return -ENOEXEC;
    }
    if (h->flags & 1) {
        snprintf(err, errlen, "arm64 Image header: flags %#llx ask for a big-endian kernel",
                 (unsigned long long)h->flags);
        return -ENOEXEC;
    }
    if (h->text_offset & (PAGE - 1) || h->text_offset >= (2ULL << 20)) {
        snprintf(err, errlen, "arm64 Image header: text_offset %#llx is not a page-aligned "
                 "offset below 2 MiB", (unsigned long long)h->text_offset);
        return -ENOEXEC;
    }
    return 0;
}

/* Inflates a gzip file (Debian's vmlinuz) into a malloc'ed buffer of at most max bytes. */
static int gunzip(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen, size_t max,
                  char *err, size_t errlen)
{
    z_stream z = { 0 };
    size_t cap = inlen * 4 < max ? inlen * 4 : max, n = 0;
    uint8_t *buf = malloc(cap);
    int zr;

    if (!buf || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return -ENOMEM;
    }
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)inlen;
    do {
        if (n == cap) {
            if (cap == max) {
                snprintf(err, errlen, "gzip kernel: inflates past %zu MiB", max >> 20);
                zr = Z_MEM_ERROR;
                break;
            }
            size_t ncap = cap * 2 < max ? cap * 2 : max;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                zr = Z_MEM_ERROR;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        z.next_out = buf + n;
        z.avail_out = (uInt)(cap - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
    } while (zr == Z_OK);
    inflateEnd(&z);
    if (zr != Z_STREAM_END) {
        if (zr != Z_MEM_ERROR)
            snprintf(err, errlen, "gzip kernel: corrupt or truncated (zlib %d after %zu bytes)",
                     zr, n);
        free(buf);
        return -ENOEXEC;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

int loader_arm64_load_image(struct guest_mem *mem, const uint8_t *img, size_t len,
                            const uint8_t *initrd, size_t initrd_len, struct arm64_kernel *out,
                            char *err, size_t errlen)
{
    struct arm64_image_header h;
    int rc = loader_arm64_parse(img, len, &h, err, errlen);

    if (rc)
        return rc;
    if (mem->nranges < 1)
        return -EINVAL;
    uint64_t ram_end = mem->ranges[0].gpa + mem->ranges[0].size;
    uint64_t load = MEMMAP_ARM64_KERNEL_BASE + h.text_offset;
    if (h.image_size > ram_end || load > ram_end - h.image_size) {
        snprintf(err, errlen, "arm64 Image header: image_size %#llx at %#llx goes past the end "
                 "of RAM (%#llx; raise --mem)", (unsigned long long)h.image_size,
                 (unsigned long long)load, (unsigned long long)ram_end);
        return -ERANGE;
    }
    uint64_t kernel_end = load + h.image_size;
    uint64_t rd_addr = 0;
    if (initrd_len) {
        uint64_t rd_size = (initrd_len + PAGE - 1) & ~(PAGE - 1);
        if (rd_size > ram_end - kernel_end) {
            snprintf(err, errlen, "initrd of %zu bytes does not fit in RAM above the kernel "
                     "(%llu bytes free; raise --mem)", initrd_len,
                     (unsigned long long)(ram_end - kernel_end));
            return -ERANGE;
        }
        rd_addr = ram_end - rd_size;
    }
    uint8_t *dst = guest_mem_host(mem, load, h.image_size);
    if (!dst)
        return -EFAULT;
    memcpy(dst, img, len);
    memset(dst + len, 0, h.image_size - len);
    if (initrd_len) {
        uint8_t *rd = guest_mem_host(mem, rd_addr, initrd_len);
        if (!rd)
            return -EFAULT;
        memcpy(rd, initrd, initrd_len);
    }
    *out = (struct arm64_kernel){ .entry = load, .initrd_addr = rd_addr,
                                  .initrd_size = initrd_len };
    return 0;
}

int loader_arm64_load(struct guest_mem *mem, const char *kernel_path, const char *initrd_path,
                      struct arm64_kernel *out, char *err, size_t errlen)
{
    uint8_t *img = NULL, *raw = NULL, *rd = NULL;
    size_t len = 0, rawlen = 0, rdlen = 0;
    char why[256] = "";
    int rc = loader_read_file(kernel_path, &raw, &rawlen, err, errlen);

    if (rc)
        return rc;
    if (rawlen >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        rc = gunzip(raw, rawlen, &img, &len, LOADER_MAX_IMAGE, why, sizeof(why));
        free(raw);
    } else {
        img = raw;
        len = rawlen;
    }
    if (!rc && initrd_path)
        rc = loader_read_file(initrd_path, &rd, &rdlen, why, sizeof(why));
    if (!rc)
        rc = loader_arm64_load_image(mem, img, len, rd, rdlen, out, why, sizeof(why));
    if (rc)
        snprintf(err, errlen, "%s: %s", kernel_path, why[0] ? why : strerror(-rc));
    free(img);
    free(rd);
    return rc;
}
