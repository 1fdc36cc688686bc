/* Unit tests for the ELF loaders (64- and 32-bit PVH ELF, ELF vmlinux), the command line and the
 * initrd: synthetic ELF images written to temp files, results checked byte for byte in guest RAM.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/boot/boot.h"
#include "kiln/boot/layout.h"

#define MIB       (1ULL << 20)
#define RAM_SIZE  (64 * MIB)
#define IMAGE_CAP (256 * 1024)
#define MAX_FILES 8

#define PVH_LOAD      0x100000ULL
#define PVH_ENTRY     0x100010ULL
#define VMLINUX_PADDR 0x1000000ULL
#define VMLINUX_VADDR 0xffffffff81000000ULL
#define SEG_FILESZ    4096
#define SEG_MEMSZ     8192
#define INITRD_SIZE   5000

struct fixture {
    struct guest_mem mem;
    char dir[64];
    char paths[MAX_FILES][160];
    int nfiles;
    uint8_t *image; /* scratch buffer for building an ELF */
    uint8_t payload[SEG_FILESZ];
};

/* ---- fixture and files ---- */

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct error err;
    if (!f || guest_mem_init(&f->mem, RAM_SIZE, &err) != 0)
        return -1;
    f->image = calloc(1, IMAGE_CAP);
    strcpy(f->dir, "/tmp/kiln-boot-elf-XXXXXX");
    if (!f->image || !mkdtemp(f->dir))
        return -1;
    for (size_t i = 0; i < sizeof(f->payload); i++)
        f->payload[i] = (uint8_t)(i * 7 + 1);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < f->nfiles; i++)
        unlink(f->paths[i]);
    rmdir(f->dir);
    guest_mem_destroy(&f->mem);
    free(f->image);
    free(f);
    return 0;
}

static const char *file_path(struct fixture *f, const char *name)
{
    assert_true(f->nfiles < MAX_FILES);
    char *path = f->paths[f->nfiles++];
    snprintf(path, sizeof(f->paths[0]), "%s/%s", f->dir, name);
    return path;
}

static const char *write_file(struct fixture *f, const char *name, const void *data, size_t len)
{
    const char *path = file_path(f, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* A sparse file: big initrds without writing megabytes. */
static const char *sparse_file(struct fixture *f, const char *name, uint64_t size)
{
    const char *path = file_path(f, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
    return path;
}

static const char *write_initrd(struct fixture *f)
{
    uint8_t data[INITRD_SIZE];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(0xa5 ^ i);
    return write_file(f, "initrd", data, sizeof(data));
}

/* ---- ELF image builder ---- */

struct seg {
    uint32_t type;
    uint64_t paddr, vaddr, memsz;
    const void *data;
    uint64_t filesz;
    uint64_t align;
};

struct elf_spec {
    uint64_t entry;
    int nseg;
    struct seg seg[4];
};

static size_t align16(size_t v)
{
    return (v + 15) & ~(size_t)15;
}

/* The headers are built in their 64-bit form and written in the file's class: a 32-bit ELF
 * (Elf32_Ehdr, Elf32_Phdr, EM_386) is what a 32-bit x86 PVH kernel is. */
static void put_ehdr(uint8_t *buf, const Elf64_Ehdr *eh, bool is32)
{
    if (!is32) {
        memcpy(buf, eh, sizeof(*eh));
        return;
    }
    Elf32_Ehdr e = {.e_type = eh->e_type,
                    .e_machine = eh->e_machine,
                    .e_version = eh->e_version,
                    .e_entry = (Elf32_Addr)eh->e_entry,
                    .e_phoff = (Elf32_Off)eh->e_phoff,
                    .e_ehsize = sizeof(Elf32_Ehdr),
                    .e_phentsize = sizeof(Elf32_Phdr),
                    .e_phnum = eh->e_phnum};
    memcpy(e.e_ident, eh->e_ident, EI_NIDENT);
    e.e_ident[EI_CLASS] = ELFCLASS32;
    memcpy(buf, &e, sizeof(e));
}

static void put_phdr(uint8_t *buf, const Elf64_Phdr *ph, bool is32)
{
    if (!is32) {
        memcpy(buf, ph, sizeof(*ph));
        return;
    }
    Elf32_Phdr p = {.p_type = ph->p_type,
                    .p_offset = (Elf32_Off)ph->p_offset,
                    .p_vaddr = (Elf32_Addr)ph->p_vaddr,
                    .p_paddr = (Elf32_Addr)ph->p_paddr,
                    .p_filesz = (Elf32_Word)ph->p_filesz,
                    .p_memsz = (Elf32_Word)ph->p_memsz,
                    .p_flags = ph->p_flags,
                    .p_align = (Elf32_Word)ph->p_align};
    memcpy(buf, &p, sizeof(p));
}

/* Layout: the ELF header, the program headers, then each segment's bytes (16-aligned). */
static size_t elf_build_class(uint8_t *buf, const struct elf_spec *spec, bool is32,
                              uint16_t machine)
{
    size_t ehsize = is32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
    size_t phsize = is32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
    memset(buf, 0, IMAGE_CAP);
    Elf64_Ehdr eh = {
        .e_type = ET_EXEC,
        .e_machine = machine,
        .e_version = EV_CURRENT,
        .e_entry = spec->entry,
        .e_phoff = ehsize,
        .e_ehsize = sizeof(Elf64_Ehdr),
        .e_phentsize = sizeof(Elf64_Phdr),
        .e_phnum = (uint16_t)spec->nseg,
    };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    put_ehdr(buf, &eh, is32);
    size_t off = align16(ehsize + (size_t)spec->nseg * phsize);
    for (int i = 0; i < spec->nseg; i++) {
        const struct seg *s = &spec->seg[i];
        Elf64_Phdr ph = {
            .p_type = s->type,
            .p_flags = PF_R | PF_X,
            .p_offset = off,
            .p_vaddr = s->vaddr ? s->vaddr : s->paddr,
            .p_paddr = s->paddr,
            .p_filesz = s->filesz,
            .p_memsz = s->memsz,
            .p_align = s->align ? s->align : (s->type == PT_NOTE ? 4 : 0x1000),
        };
        put_phdr(buf + ehsize + (size_t)i * phsize, &ph, is32);
        assert_true(off + s->filesz <= IMAGE_CAP);
        if (s->filesz)
            memcpy(buf + off, s->data, s->filesz);
        off = align16(off + s->filesz);
    }
    return off;
}

static size_t elf_build(uint8_t *buf, const struct elf_spec *spec)
{
    return elf_build_class(buf, spec, false, EM_X86_64);
}

static Elf64_Phdr *elf_phdr(uint8_t *image, int i)
{
    return (Elf64_Phdr *)(image + sizeof(Elf64_Ehdr) + (size_t)i * sizeof(Elf64_Phdr));
}

/* One ELF note, name and desc padded to 4 bytes. */
static size_t note_build(uint8_t *out, const char *name, uint32_t type, const void *desc,
                         uint32_t descsz)
{
    Elf64_Nhdr nh = {.n_namesz = (uint32_t)strlen(name) + 1, .n_descsz = descsz, .n_type = type};
    size_t off = 0;
    memcpy(out, &nh, sizeof(nh));
    off += sizeof(nh);
    memset(out + off, 0, (nh.n_namesz + 3) & ~3u);
    memcpy(out + off, name, nh.n_namesz);
    off += (nh.n_namesz + 3) & ~3u;
    memset(out + off, 0, (descsz + 3) & ~3u);
    memcpy(out + off, desc, descsz);
    return off + ((descsz + 3) & ~3u);
}

/* A GNU build-id note first, so the loader has to walk past a foreign note. */
static size_t notes_build(uint8_t *out, const void *xen_desc, uint32_t xen_descsz)
{
    uint8_t build_id[20];
    memset(build_id, 0x42, sizeof(build_id));
    size_t len = note_build(out, "GNU", NT_GNU_BUILD_ID, build_id, sizeof(build_id));
    if (xen_desc)
        len += note_build(out + len, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, xen_desc, xen_descsz);
    return len;
}

static struct seg load_seg(const struct fixture *f, uint64_t paddr, uint64_t vaddr)
{
    return (struct seg){.type = PT_LOAD,
                        .paddr = paddr,
                        .vaddr = vaddr,
                        .memsz = SEG_MEMSZ,
                        .data = f->payload,
                        .filesz = SEG_FILESZ};
}

static const char *pvh_image(struct fixture *f, const void *desc, uint32_t descsz)
{
    uint8_t notes[128];
    struct elf_spec spec = {.entry = PVH_LOAD, .nseg = 2};
    spec.seg[0] = load_seg(f, PVH_LOAD, 0);
    spec.seg[1] =
        (struct seg){.type = PT_NOTE, .data = notes, .filesz = notes_build(notes, desc, descsz)};
    return write_file(f, "pvh.elf", f->image, elf_build(f->image, &spec));
}

static const char *pvh_image_default(struct fixture *f)
{
    uint8_t desc[4] = {PVH_ENTRY & 0xff, (PVH_ENTRY >> 8) & 0xff, (PVH_ENTRY >> 16) & 0xff, 0};
    return pvh_image(f, desc, sizeof(desc));
}

/* A vmlinux-like ELF: no Xen note (only a GNU one), linked virtual, loaded physical. */
static size_t vmlinux_build(struct fixture *f, uint64_t entry)
{
    uint8_t notes[64];
    struct elf_spec spec = {.entry = entry, .nseg = 2};
    spec.seg[0] = load_seg(f, VMLINUX_PADDR, VMLINUX_VADDR);
    spec.seg[1] = (struct seg){.type = PT_NOTE, .data = notes, .filesz = notes_build(notes, 0, 0)};
    return elf_build(f->image, &spec);
}

static const char *vmlinux_image(struct fixture *f, uint64_t entry)
{
    return write_file(f, "vmlinux", f->image, vmlinux_build(f, entry));
}

/* ---- helpers for results ---- */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static const uint8_t *ram(struct fixture *f, uint64_t gpa, uint64_t len)
{
    const uint8_t *p = guest_mem_ptr(&f->mem, gpa, len);
    assert_non_null(p);
    return p;
}

static int load(struct fixture *f, const char *kernel, const char *initrd, const char *cmdline,
                struct boot_entry *entry, struct error *err)
{
    struct boot_config cfg = {
        .kernel_path = kernel, .initrd_path = initrd, .cmdline = cmdline, .rsdp_gpa = 0xe0000};
    memset(entry, 0, sizeof(*entry));
    memset(err, 0, sizeof(*err));
    return boot_load(&f->mem, &cfg, entry, err);
}

static void expect_error(struct fixture *f, const char *kernel, const char *initrd,
                         const char *cmdline, int code, const char *msg)
{
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, cmdline, &entry, &err), code);
    assert_string_equal(err.msg, msg);
}

/* The RAM map every 64 MiB guest gets, as (addr, size, type). */
static const uint64_t expected_map[3][3] = {
    {0, 0x9fc00, 1}, {0x9fc00, 0x60400, 2}, {0x100000, RAM_SIZE - 0x100000, 1}};

static void assert_cmdline(struct fixture *f, const char *cmdline)
{
    size_t len = strlen(cmdline) + 1;
    assert_memory_equal(ram(f, LAYOUT_CMDLINE, len), cmdline, len);
}

static void assert_segment_loaded(struct fixture *f, uint64_t paddr)
{
    assert_memory_equal(ram(f, paddr, SEG_FILESZ), f->payload, SEG_FILESZ);
    const uint8_t *bss = ram(f, paddr + SEG_FILESZ, SEG_MEMSZ - SEG_FILESZ);
    for (size_t i = 0; i < SEG_MEMSZ - SEG_FILESZ; i++)
        assert_int_equal(bss[i], 0);
}

static void assert_initrd_at(struct fixture *f, uint64_t gpa)
{
    const uint8_t *p = ram(f, gpa, INITRD_SIZE);
    for (size_t i = 0; i < INITRD_SIZE; i++)
        assert_int_equal(p[i], (uint8_t)(0xa5 ^ i));
}

/* Highest page-aligned start that keeps a 5000-byte initrd inside 64 MiB. */
#define INITRD_GPA ((RAM_SIZE - INITRD_SIZE) & ~0xfffULL)

/* ---- PVH ---- */

static void test_pvh_loads(void **state)
{
    struct fixture *f = *state;
    /* Dirty the segment's RAM first: the loader must zero .bss itself. */
    memset(guest_mem_ptr(&f->mem, PVH_LOAD, SEG_MEMSZ), 0xcc, SEG_MEMSZ);
    const char *kernel = pvh_image_default(f);
    const char *initrd = write_initrd(f);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, "console=ttyS0 panic=-1", &entry, &err), 0);

    assert_int_equal(entry.mode, BOOT_ENTRY_PVH32);
    assert_int_equal(entry.rip, PVH_ENTRY);
    assert_int_equal(entry.boot_info_gpa, LAYOUT_PVH_START_INFO);
    assert_string_equal(entry.format, "PVH ELF");
    assert_segment_loaded(f, PVH_LOAD);
    assert_cmdline(f, "console=ttyS0 panic=-1");

    /* hvm_start_info, field by field at its ABI offsets. */
    const uint8_t *si = ram(f, LAYOUT_PVH_START_INFO, 56);
    assert_int_equal(le32(si + 0), 0x336ec578); /* magic */
    assert_int_equal(le32(si + 4), 1);          /* version */
    assert_int_equal(le32(si + 8), 0);          /* flags */
    assert_int_equal(le32(si + 12), 1);         /* nr_modules */
    assert_int_equal(le64(si + 16), 0x8100);    /* modlist_paddr */
    assert_int_equal(le64(si + 24), 0x20000);   /* cmdline_paddr */
    assert_int_equal(le64(si + 32), 0xe0000);   /* rsdp_paddr */
    assert_int_equal(le64(si + 40), 0x8200);    /* memmap_paddr */
    assert_int_equal(le32(si + 48), 3);         /* memmap_entries */
    assert_int_equal(le32(si + 52), 0);         /* reserved */

    const uint8_t *mod = ram(f, LAYOUT_PVH_MODLIST, 32);
    assert_int_equal(le64(mod + 0), INITRD_GPA);  /* paddr */
    assert_int_equal(le64(mod + 8), INITRD_SIZE); /* size */
    assert_int_equal(le64(mod + 16), 0);          /* cmdline_paddr */
    assert_int_equal(le64(mod + 24), 0);          /* reserved */
    assert_initrd_at(f, INITRD_GPA);

    const uint8_t *mm = ram(f, LAYOUT_PVH_MEMMAP, 3 * 24);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(le64(mm + 24 * i), expected_map[i][0]);
        assert_int_equal(le64(mm + 24 * i + 8), expected_map[i][1]);
        assert_int_equal(le32(mm + 24 * i + 16), expected_map[i][2]);
        assert_int_equal(le32(mm + 24 * i + 20), 0);
    }
}

static void test_pvh_without_initrd(void **state)
{
    struct fixture *f = *state;
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, pvh_image_default(f), NULL, "", &entry, &err), 0);
    const uint8_t *si = ram(f, LAYOUT_PVH_START_INFO, 56);
    assert_int_equal(le32(si + 12), 0); /* nr_modules */
    assert_int_equal(le64(si + 16), 0); /* modlist_paddr */
    assert_cmdline(f, "");
}

static void test_pvh_note_with_8_byte_value(void **state)
{
    struct fixture *f = *state;
    /* Older Linux emits the entry with .quad (_ASM_PTR). */
    uint8_t desc[8] = {0x20, 0x00, 0x10, 0, 0, 0, 0, 0};
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, pvh_image(f, desc, sizeof(desc)), NULL, "", &entry, &err), 0);
    assert_int_equal(entry.mode, BOOT_ENTRY_PVH32);
    assert_int_equal(entry.rip, 0x100020);
}

static void test_pvh_note_bad_value_size(void **state)
{
    struct fixture *f = *state;
    uint8_t desc[2] = {0x10, 0x00};
    const char *kernel = pvh_image(f, desc, sizeof(desc));
    char msg[512];
    snprintf(msg, sizeof(msg),
             "kernel '%s': Xen PHYS32_ENTRY note has a 2-byte value (expected 4 or 8)", kernel);
    expect_error(f, kernel, NULL, "", -ENOEXEC, msg);
}

static void test_pvh_note_value_above_4g(void **state)
{
    struct fixture *f = *state;
    uint8_t desc[8] = {0x10, 0x00, 0x10, 0, 1, 0, 0, 0};
    const char *kernel = pvh_image(f, desc, sizeof(desc));
    char msg[512];
    snprintf(msg, sizeof(msg), "kernel '%s': Xen PHYS32_ENTRY 0x100100010 is not a 32-bit address",
             kernel);
    expect_error(f, kernel, NULL, "", -ENOEXEC, msg);
}

static void test_pvh_note_malformed(void **state)
{
    struct fixture *f = *state;
    uint8_t notes[32];
    size_t len = note_build(notes, "GNU", NT_GNU_BUILD_ID, "abcd", 4);
    Elf64_Nhdr nh;
    memcpy(&nh, notes, sizeof(nh));
    nh.n_descsz = 0x7ffffff0; /* runs far past the segment */
    memcpy(notes, &nh, sizeof(nh));
    struct elf_spec spec = {.entry = PVH_LOAD, .nseg = 2};
    spec.seg[0] = load_seg(f, PVH_LOAD, 0);
    spec.seg[1] = (struct seg){.type = PT_NOTE, .data = notes, .filesz = len};
    const char *kernel = write_file(f, "bad-note.elf", f->image, elf_build(f->image, &spec));
    char msg[512];
    snprintf(msg, sizeof(msg), "kernel '%s': malformed ELF note in segment 1 at offset 0x0",
             kernel);
    expect_error(f, kernel, NULL, "", -ENOEXEC, msg);
}

static void test_pvh_entry_outside_segments(void **state)
{
    struct fixture *f = *state;
    uint8_t desc[4] = {0x00, 0x00, 0x50, 0x00};
    const char *kernel = pvh_image(f, desc, sizeof(desc));
    char msg[512];
    snprintf(msg, sizeof(msg),
             "kernel '%s': entry point 0x500000 is not inside any loadable segment", kernel);
    expect_error(f, kernel, NULL, "", -ENOEXEC, msg);
}

static void test_pvh_cmdline_limit(void **state)
{
    struct fixture *f = *state;
    const char *kernel = pvh_image_default(f);
    char *cmdline = malloc(LAYOUT_CMDLINE_MAX + 1);
    memset(cmdline, 'x', LAYOUT_CMDLINE_MAX);
    cmdline[LAYOUT_CMDLINE_MAX] = '\0';
    expect_error(f, kernel, NULL, cmdline, -E2BIG,
                 "--cmdline: 65536 bytes is longer than kiln's limit of 65535 bytes");
    cmdline[LAYOUT_CMDLINE_MAX - 1] = '\0'; /* 65535 bytes + NUL fills the area exactly */
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, NULL, cmdline, &entry, &err), 0);
    assert_cmdline(f, cmdline);
    free(cmdline);
}

/* ---- ELF vmlinux (64-bit Linux boot protocol) ---- */

static void test_vmlinux_loads(void **state)
{
    struct fixture *f = *state;
    const char *kernel = vmlinux_image(f, VMLINUX_PADDR);
    const char *initrd = write_initrd(f);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, "root=/dev/vda", &entry, &err), 0);

    assert_int_equal(entry.mode, BOOT_ENTRY_LINUX64);
    assert_int_equal(entry.rip, VMLINUX_PADDR);
    assert_int_equal(entry.boot_info_gpa, LAYOUT_BOOT_PARAMS);
    assert_string_equal(entry.format, "ELF vmlinux");
    assert_segment_loaded(f, VMLINUX_PADDR);
    assert_cmdline(f, "root=/dev/vda");
    assert_initrd_at(f, INITRD_GPA);

    /* The zero page at the offsets Documentation/arch/x86/boot.rst gives. */
    const uint8_t *bp = ram(f, LAYOUT_BOOT_PARAMS, 4096);
    assert_int_equal(bp[0x1e8], 3);                       /* e820_entries */
    assert_int_equal(le64(bp + 0x70), 0xe0000);           /* acpi_rsdp_addr */
    assert_int_equal(bp[0x1fe] | bp[0x1ff] << 8, 0xaa55); /* boot_flag */
    assert_memory_equal(bp + 0x202, "HdrS", 4);           /* header */
    assert_int_equal(bp[0x206] | bp[0x207] << 8, 0x020f); /* version */
    assert_int_equal(bp[0x210], 0xff);                    /* type_of_loader */
    assert_int_equal(bp[0x211], 0x01);                    /* loadflags: LOADED_HIGH */
    assert_int_equal(le32(bp + 0x218), INITRD_GPA);       /* ramdisk_image */
    assert_int_equal(le32(bp + 0x21c), INITRD_SIZE);      /* ramdisk_size */
    assert_int_equal(le32(bp + 0x228), 0x20000);          /* cmd_line_ptr */
    assert_int_equal(le32(bp + 0x22c), 0x7fffffff);       /* initrd_addr_max */
    assert_int_equal(le32(bp + 0x230), 0x1000000);        /* kernel_alignment */
    assert_int_equal(le32(bp + 0x238), 2047);             /* cmdline_size */
    assert_int_equal(le32(bp + 0x0c0), 0);                /* ext_ramdisk_image */
    assert_int_equal(le32(bp + 0x0c4), 0);                /* ext_ramdisk_size */
    assert_int_equal(le32(bp + 0x0c8), 0);                /* ext_cmd_line_ptr */
    for (int i = 0; i < 3; i++) {
        const uint8_t *e = bp + 0x2d0 + 20 * i;
        assert_int_equal(le64(e), expected_map[i][0]);
        assert_int_equal(le64(e + 8), expected_map[i][1]);
        assert_int_equal(le32(e + 16), expected_map[i][2]);
    }
    assert_int_equal(le64(bp + 0x2d0 + 20 * 3 + 8), 0); /* nothing past the last entry */
}

static void test_vmlinux_virtual_entry(void **state)
{
    struct fixture *f = *state;
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, vmlinux_image(f, VMLINUX_VADDR + 0x40), NULL, "", &entry, &err), 0);
    assert_int_equal(entry.mode, BOOT_ENTRY_LINUX64);
    assert_int_equal(entry.rip, VMLINUX_PADDR + 0x40);
}

static void test_vmlinux_entry_outside_segments(void **state)
{
    struct fixture *f = *state;
    const char *kernel = vmlinux_image(f, VMLINUX_VADDR + 0x100000);
    char msg[512];
    snprintf(msg, sizeof(msg),
             "kernel '%s': entry point 0xffffffff81100000 is not inside any loadable segment",
             kernel);
    expect_error(f, kernel, NULL, "", -ENOEXEC, msg);
}

static void test_vmlinux_cmdline_limit(void **state)
{
    struct fixture *f = *state;
    const char *kernel = vmlinux_image(f, VMLINUX_PADDR);
    char cmdline[2049];
    memset(cmdline, 'a', 2048);
    cmdline[2048] = '\0';
    expect_error(f, kernel, NULL, cmdline, -E2BIG,
                 "--cmdline: 2048 bytes is longer than the kernel's limit of 2047 bytes");
    cmdline[2047] = '\0';
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, NULL, cmdline, &entry, &err), 0);
    assert_cmdline(f, cmdline);
}

/* ---- bad images ---- */

static char *msgf(char *buf, size_t len, const char *fmt, const char *path)
{
    snprintf(buf, len, fmt, path);
    return buf;
}

static void expect_image_error(struct fixture *f, size_t len, int code, const char *fmt)
{
    const char *kernel = write_file(f, "bad.elf", f->image, len);
    char msg[512];
    expect_error(f, kernel, NULL, "", code, msgf(msg, sizeof(msg), fmt, kernel));
}

static void test_truncated_elf_header(void **state)
{
    struct fixture *f = *state;
    vmlinux_build(f, VMLINUX_PADDR);
    expect_image_error(f, 40, -ENOEXEC,
                       "kernel '%s': truncated (ELF header; file has 40 bytes, expected 64 bytes)");
}

static void test_truncated_phdr_table(void **state)
{
    struct fixture *f = *state;
    vmlinux_build(f, VMLINUX_PADDR);
    expect_image_error(f, 100, -ENOEXEC,
                       "kernel '%s': truncated (program header table; file has 100 bytes, "
                       "expected 176 bytes)");
}

static void test_segment_beyond_file(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_filesz = 0x100000;
    elf_phdr(f->image, 0)->p_memsz = 0x100000;
    char fmt[256];
    snprintf(fmt, sizeof(fmt),
             "kernel '%%s': truncated (segment 0 data; file has %zu bytes, expected %llu bytes)",
             len, (unsigned long long)elf_phdr(f->image, 0)->p_offset + 0x100000);
    expect_image_error(f, len, -ENOEXEC, fmt);
}

static void test_segment_offset_overflow(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_offset = UINT64_MAX - 10;
    char fmt[256];
    snprintf(fmt, sizeof(fmt),
             "kernel '%%s': truncated (segment 0 data; file has %zu bytes, expected "
             "18446744073709551615 bytes)",
             len);
    expect_image_error(f, len, -ENOEXEC, fmt);
}

static void test_segment_outside_ram(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_paddr = RAM_SIZE - 0x1000; /* starts in RAM, ends past it */
    expect_image_error(f, len, -ENOMEM,
                       "kernel '%s': segment 0 at 0x3fff000 (size 0x2000) is outside guest RAM "
                       "(0x0-0x4000000)");
}

static void test_segment_in_mmio_hole(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_paddr = 0xfee00000;
    expect_image_error(f, len, -ENOMEM,
                       "kernel '%s': segment 0 at 0xfee00000 (size 0x2000) is outside guest RAM "
                       "(0x0-0x4000000)");
}

static int fixture_setup_big(void **state)
{
    if (fixture_setup(state))
        return -1;
    struct fixture *f = *state;
    struct error err;
    guest_mem_destroy(&f->mem);
    /* 3 GiB + 64 MiB: RAM below the MMIO hole and at 4 GiB (NORESERVE, so cheap). */
    return guest_mem_init(&f->mem, 3 * 1024 * MIB + 64 * MIB, &err);
}

static void test_segment_across_mmio_hole(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_paddr = 0xbffff000; /* last page of low RAM, then the hole */
    expect_image_error(f, len, -ENOMEM,
                       "kernel '%s': segment 0 at 0xbffff000 (size 0x2000) is outside guest RAM "
                       "(0x0-0xc0000000, 0x100000000-0x104000000)");
}

static void test_segment_below_1m(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_paddr = 0x8000;
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': segment 0 at 0x8000 (size 0x2000) is below 1 MiB, where kiln "
                       "keeps its boot structures; link the kernel at 0x100000 or above");
}

static void test_segment_filesz_above_memsz(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_memsz = 0x100;
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': segment 0 has a file size 0x1000 larger than its memory size "
                       "0x100");
}

static void test_segment_filesz_without_memsz(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_memsz = 0;
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': segment 0 has a file size 0x1000 larger than its memory size "
                       "0x0");
}

static void test_no_load_segments(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 0)->p_type = PT_NULL;
    expect_image_error(f, len, -ENOEXEC, "kernel '%s': ELF has no loadable (PT_LOAD) segments");
}

static void patch_ehdr(struct fixture *f, size_t offset, const void *value, size_t len)
{
    memcpy(f->image + offset, value, len);
}

/* A 32-bit x86 PVH kernel (ELFCLASS32, EM_386, XEN_ELFNOTE_PHYS32_ENTRY): its entry is 32-bit
 * code, as every PVH entry is, so it boots like a 64-bit PVH ELF. */
static size_t pvh32_build(struct fixture *f, const void *xen_desc, uint16_t machine)
{
    uint8_t notes[128];
    struct elf_spec spec = {.entry = PVH_LOAD, .nseg = 2};
    spec.seg[0] = load_seg(f, PVH_LOAD, 0);
    spec.seg[1] = (struct seg){
        .type = PT_NOTE, .data = notes, .filesz = notes_build(notes, xen_desc, xen_desc ? 4 : 0)};
    return elf_build_class(f->image, &spec, true, machine);
}

static void test_pvh32_loads(void **state)
{
    struct fixture *f = *state;
    memset(guest_mem_ptr(&f->mem, PVH_LOAD, SEG_MEMSZ), 0xcc, SEG_MEMSZ);
    uint8_t desc[4] = {PVH_ENTRY & 0xff, (PVH_ENTRY >> 8) & 0xff, (PVH_ENTRY >> 16) & 0xff, 0};
    const char *kernel = write_file(f, "pvh32.elf", f->image, pvh32_build(f, desc, EM_386));
    const char *initrd = write_initrd(f);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, "console=ttyS0", &entry, &err), 0);
    assert_int_equal(entry.mode, BOOT_ENTRY_PVH32);
    assert_int_equal(entry.rip, PVH_ENTRY);
    assert_int_equal(entry.boot_info_gpa, LAYOUT_PVH_START_INFO);
    assert_string_equal(entry.format, "PVH ELF");
    assert_segment_loaded(f, PVH_LOAD);
    assert_cmdline(f, "console=ttyS0");
    assert_int_equal(le32(ram(f, LAYOUT_PVH_START_INFO, 4)), 0x336ec578);
    assert_initrd_at(f, INITRD_GPA);
}

static void test_elf32_without_pvh_note(void **state)
{
    struct fixture *f = *state;
    size_t len = pvh32_build(f, NULL, EM_386);
    expect_image_error(
        f, len, -ENOEXEC,
        "kernel '%s': 32-bit ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
        "expected a PVH kernel or a 64-bit x86-64 ELF");
}

static void test_elf32_wrong_machine(void **state)
{
    struct fixture *f = *state;
    uint8_t desc[4] = {PVH_ENTRY & 0xff, (PVH_ENTRY >> 8) & 0xff, (PVH_ENTRY >> 16) & 0xff, 0};
    size_t len = pvh32_build(f, desc, EM_X86_64);
    expect_image_error(
        f, len, -ENOEXEC,
        "kernel '%s': ELF machine 62 is not x86 (expected EM_386 in a 32-bit ELF, 3)");
}

static void test_elf32_truncated_phdr_table(void **state)
{
    struct fixture *f = *state;
    uint8_t desc[4] = {PVH_ENTRY & 0xff, (PVH_ENTRY >> 8) & 0xff, (PVH_ENTRY >> 16) & 0xff, 0};
    pvh32_build(f, desc, EM_386);
    expect_image_error(f, sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr), -ENOEXEC,
                       "kernel '%s': truncated (program header table; file has 84 bytes, expected "
                       "116 bytes)");
}

static void test_elf_bad_class(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    f->image[EI_CLASS] = ELFCLASSNONE;
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': ELF class 0 is not supported; expected a 64-bit x86-64 ELF or "
                       "a 32-bit x86 PVH ELF");
}

static void test_big_endian(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    f->image[EI_DATA] = ELFDATA2MSB;
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': ELF data encoding 2 is not little-endian (ELFDATA2LSB)");
}

static void test_wrong_machine(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    uint16_t machine = EM_AARCH64;
    patch_ehdr(f, offsetof(Elf64_Ehdr, e_machine), &machine, sizeof(machine));
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': ELF machine 183 is not x86-64 (expected EM_X86_64, 62)");
}

static void test_not_executable(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    uint16_t type = ET_DYN;
    patch_ehdr(f, offsetof(Elf64_Ehdr, e_type), &type, sizeof(type));
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': ELF type 3 is not an executable (expected ET_EXEC, 2)");
}

static void test_bad_phentsize(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    uint16_t size = 32;
    patch_ehdr(f, offsetof(Elf64_Ehdr, e_phentsize), &size, sizeof(size));
    expect_image_error(f, len, -ENOEXEC,
                       "kernel '%s': ELF program header size 32 is wrong (expected 56)");
}

static void test_no_phdrs(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    uint16_t n = 0;
    patch_ehdr(f, offsetof(Elf64_Ehdr, e_phnum), &n, sizeof(n));
    expect_image_error(f, len, -ENOEXEC, "kernel '%s': ELF has no program headers");
}

static void test_truncated_note_segment(void **state)
{
    struct fixture *f = *state;
    size_t len = vmlinux_build(f, VMLINUX_PADDR);
    elf_phdr(f->image, 1)->p_offset = len - 4;
    char fmt[256];
    snprintf(fmt, sizeof(fmt),
             "kernel '%%s': truncated (segment 1 data; file has %zu bytes, expected %llu bytes)",
             len, (unsigned long long)(len - 4 + elf_phdr(f->image, 1)->p_filesz));
    expect_image_error(f, len, -ENOEXEC, fmt);
}

/* ---- initrd ---- */

static void test_initrd_too_big(void **state)
{
    struct fixture *f = *state;
    const char *kernel = pvh_image_default(f);
    const char *initrd = sparse_file(f, "big-initrd", 70 * MIB);
    char msg[512];
    /* Free: from the page above the kernel (0x102000) up to 64 MiB, 62.99 MiB -> 62. */
    snprintf(msg, sizeof(msg),
             "--initrd '%s': 70 MiB does not fit in guest RAM below 0x4000000 (62 MiB free; give "
             "the VM more --memory)",
             initrd);
    expect_error(f, kernel, initrd, "", -ENOMEM, msg);
}

static void test_initrd_just_fits(void **state)
{
    struct fixture *f = *state;
    const char *kernel = pvh_image_default(f);
    const char *initrd = sparse_file(f, "snug-initrd", RAM_SIZE - 0x102000);
    struct boot_entry entry;
    struct error err;
    assert_int_equal(load(f, kernel, initrd, "", &entry, &err), 0);
    assert_int_equal(le64(ram(f, LAYOUT_PVH_MODLIST, 8)), 0x102000);
}

static void test_initrd_missing(void **state)
{
    struct fixture *f = *state;
    const char *kernel = pvh_image_default(f);
    char initrd[160], msg[512];
    snprintf(initrd, sizeof(initrd), "%s/no-such-initrd", f->dir);
    snprintf(msg, sizeof(msg), "--initrd '%s': cannot open: No such file or directory", initrd);
    expect_error(f, kernel, initrd, "", -ENOENT, msg);
}

static void test_initrd_empty(void **state)
{
    struct fixture *f = *state;
    const char *kernel = vmlinux_image(f, VMLINUX_PADDR);
    const char *initrd = write_file(f, "empty-initrd", "", 0);
    char msg[512];
    snprintf(msg, sizeof(msg), "--initrd '%s': file is empty", initrd);
    expect_error(f, kernel, initrd, "", -EINVAL, msg);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_pvh_loads),
        TEST(test_pvh_without_initrd),
        TEST(test_pvh_note_with_8_byte_value),
        TEST(test_pvh_note_bad_value_size),
        TEST(test_pvh_note_value_above_4g),
        TEST(test_pvh_note_malformed),
        TEST(test_pvh_entry_outside_segments),
        TEST(test_pvh_cmdline_limit),
        TEST(test_vmlinux_loads),
        TEST(test_vmlinux_virtual_entry),
        TEST(test_vmlinux_entry_outside_segments),
        TEST(test_vmlinux_cmdline_limit),
        TEST(test_truncated_elf_header),
        TEST(test_truncated_phdr_table),
        TEST(test_segment_beyond_file),
        TEST(test_segment_offset_overflow),
        TEST(test_segment_outside_ram),
        TEST(test_segment_in_mmio_hole),
        cmocka_unit_test_setup_teardown(test_segment_across_mmio_hole, fixture_setup_big,
                                        fixture_teardown),
        TEST(test_segment_below_1m),
        TEST(test_segment_filesz_above_memsz),
        TEST(test_segment_filesz_without_memsz),
        TEST(test_no_load_segments),
        TEST(test_pvh32_loads),
        TEST(test_elf32_without_pvh_note),
        TEST(test_elf32_wrong_machine),
        TEST(test_elf32_truncated_phdr_table),
        TEST(test_elf_bad_class),
        TEST(test_big_endian),
        TEST(test_wrong_machine),
        TEST(test_not_executable),
        TEST(test_bad_phentsize),
        TEST(test_no_phdrs),
        TEST(test_truncated_note_segment),
        TEST(test_initrd_too_big),
        TEST(test_initrd_just_fits),
        TEST(test_initrd_missing),
        TEST(test_initrd_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
