/* PVH detection: walks the ELF PT_NOTE segments, bounds-checking every note, for the Xen
 * XEN_ELFNOTE_PHYS32_ENTRY note that marks a kernel as bootable through the PVH entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot_internal.h"

/* Kernel note segments are a few hundred bytes; refuse to buffer anything absurd. */
#define NOTE_SEGMENT_MAX (1ULL << 20)
#define XEN_NOTE_NAME    "Xen" /* with its NUL, namesz is 4 */

struct note_scan {
    const struct boot_file *file;
    unsigned segment;
    uint32_t *entry;
    bool *found;
    struct error *err;
};

static int note_malformed(const struct note_scan *scan, uint64_t offset)
{
    return error_fmt(scan->err, -ENOEXEC,
                     "kernel '%s': malformed ELF note in segment %u at offset 0x%llx",
                     scan->file->path, scan->segment, (unsigned long long)offset);
}

/* Linux emits the value with _ASM_PTR (8 bytes on x86-64) in older kernels and .long in newer
 * ones; the PVH ABI itself defines a 32-bit address, so accept both and insist on < 4 GiB. */
static int note_pvh_entry(const struct note_scan *scan, const uint8_t *desc, uint32_t descsz)
{
    uint64_t value = 0;
    if (descsz != 4 && descsz != 8)
        return error_fmt(scan->err, -ENOEXEC,
                         "kernel '%s': Xen PHYS32_ENTRY note has a %u-byte value (expected 4 or 8)",
                         scan->file->path, descsz);
    for (uint32_t i = 0; i < descsz; i++)
        value |= (uint64_t)desc[i] << (8 * i);
    if (value > UINT32_MAX)
        return error_fmt(scan->err, -ENOEXEC,
                         "kernel '%s': Xen PHYS32_ENTRY 0x%llx is not a 32-bit address",
                         scan->file->path, (unsigned long long)value);
    *scan->entry = (uint32_t)value;
    *scan->found = true;
    return 0;
}

/* Each note: Elf64_Nhdr, name padded to align, desc padded to align. All sums are done in
 * 64 bits on values below 2^33, so none can overflow. */
static int note_walk(const struct note_scan *scan, const uint8_t *buf, uint64_t len, uint64_t align)
{
    uint64_t off = 0;
    while (!*scan->found && len - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, buf + off, sizeof(nh));
        uint64_t name_off = off + sizeof(nh);
        uint64_t desc_off = name_off + boot_align_up(nh.n_namesz, align);
        if (desc_off > len || nh.n_descsz > len - desc_off)
            return note_malformed(scan, off);
        if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == sizeof(XEN_NOTE_NAME) &&
            memcmp(buf + name_off, XEN_NOTE_NAME, sizeof(XEN_NOTE_NAME)) == 0)
            return note_pvh_entry(scan, buf + desc_off, nh.n_descsz);
        off = desc_off + boot_align_up(nh.n_descsz, align);
        if (off > len)
            break;
    }
    return 0;
}

static int note_segment(struct note_scan *scan, const Elf64_Phdr *ph)
{
    const struct boot_file *file = scan->file;
    if (ph->p_filesz > NOTE_SEGMENT_MAX)
        return error_fmt(scan->err, -ENOEXEC,
                         "kernel '%s': note segment %u is 0x%llx bytes (at most 0x%llx supported)",
                         file->path, scan->segment, (unsigned long long)ph->p_filesz,
                         NOTE_SEGMENT_MAX);
    uint8_t *buf = malloc(ph->p_filesz ? ph->p_filesz : 1);
    if (!buf)
        return error_fmt(scan->err, -ENOMEM, "kernel '%s': out of memory for notes", file->path);
    char what[64];
    snprintf(what, sizeof(what), "segment %u data", scan->segment);
    int rc = boot_file_read(file, ph->p_offset, buf, ph->p_filesz, what, scan->err);
    /* Notes are 4-byte aligned; a few toolchains use 8 and say so in p_align. */
    if (!rc)
        rc = note_walk(scan, buf, ph->p_filesz, ph->p_align == 8 ? 8 : 4);
    free(buf);
    return rc;
}

int boot_elf_find_pvh_entry(const struct boot_file *file, const Elf64_Phdr *phdrs, unsigned phnum,
                            uint32_t *entry, bool *found, struct error *err)
{
    struct note_scan scan = {.file = file, .entry = entry, .found = found, .err = err};
    *found = false;
    for (unsigned i = 0; i < phnum && !*found; i++) {
        if (phdrs[i].p_type != PT_NOTE)
            continue;
        scan.segment = i;
        int rc = note_segment(&scan, &phdrs[i]);
        if (rc)
            return rc;
    }
    return 0;
}
