/* Merging a diff snapshot into its base (kiln/snapshot/snap_merge.h): memory first, then the
 * state file and the config, each replaced through NAME.tmp + rename. Run again after a
 * crash, it finishes the job (the same pages go to the same places). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/snapshot/snap_dir.h"
#include "kiln/snapshot/snap_mem.h"
#include "kiln/snapshot/snap_merge.h"
#include "kiln/snapshot/snap_state.h"
#include "snap_io.h"

#define CONFIG_MAX_SIZE (1u << 20) /* config.yaml as kiln writes it is a few KiB */

static int load_state(const char *dir, struct snap_reader *reader, struct error *err)
{
    char path[4096];
    int r = snap_dir_file(dir, SNAP_STATE_FILE, path, sizeof(path), err);
    return r < 0 ? r : snap_reader_load(reader, path, err);
}

/* The diff's state, every section as it is, into the base's state.kiln with the base's flags:
 * a full base stays full, a diff base keeps its own base. */
static int replace_state(const struct snap_reader *diff, const char *base_dir, uint32_t flags,
                         struct error *err)
{
    char path[4096];
    int r = snap_dir_file(base_dir, SNAP_STATE_FILE, path, sizeof(path), err);
    if (r < 0)
        return r;
    struct snap_info info = diff->info;
    info.flags = flags;
    struct snap_writer w;
    r = snap_writer_open(&w, path, &info, err);
    if (r < 0)
        return r;
    struct snap_section section;
    for (uint32_t i = 0; r == 0 && snap_reader_section(diff, i, &section) == 0; i++)
        r = snap_writer_add(&w, section.name, section.slot, section.data, section.size, err);
    if (r == 0)
        return snap_writer_finish(&w, err);
    snap_writer_abort(&w);
    return r;
}

static int replace_config(const char *dir, const char *base_dir, struct error *err)
{
    char from[4096], to[4096], tmp[4096 + 8];
    int r = snap_dir_file(dir, SNAP_CONFIG_FILE, from, sizeof(from), err);
    if (r == 0)
        r = snap_dir_file(base_dir, SNAP_CONFIG_FILE, to, sizeof(to), err);
    if (r == 0)
        r = snap_tmp_path(to, tmp, sizeof(tmp), err);
    if (r < 0)
        return r;
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return error_fmt(err, -errno, "%s: %s", from, strerror(errno));
    char *text = malloc(CONFIG_MAX_SIZE);
    ssize_t len = text ? read(in, text, CONFIG_MAX_SIZE) : -1;
    int saved = text ? errno : ENOMEM;
    close(in);
    if (len < 0 || len == CONFIG_MAX_SIZE) {
        free(text);
        return len < 0 ? error_fmt(err, -saved, "%s: %s", from, strerror(saved))
                       : error_fmt(err, -EFBIG, "%s: larger than %u bytes", from, CONFIG_MAX_SIZE);
    }
    int fd = snap_create_tmp(tmp, err);
    r = fd < 0 ? fd : snap_pwrite_all(fd, text, (size_t)len, 0, tmp, err);
    if (r == 0)
        r = snap_commit(fd, tmp, to, err);
    if (fd >= 0) {
        close(fd);
        if (r < 0)
            unlink(tmp);
    }
    free(text);
    return r;
}

static int merge_memory(const char *dir, const char *base_dir, bool base_is_diff, struct error *err)
{
    char into[4096], into_bitmap[4096], diff[4096], bitmap[4096];
    int r = snap_dir_file(base_dir, base_is_diff ? SNAP_DIFF_FILE : SNAP_MEMORY_FILE, into,
                          sizeof(into), err);
    if (r == 0)
        r = snap_dir_file(base_dir, SNAP_DIRTY_FILE, into_bitmap, sizeof(into_bitmap), err);
    if (r == 0)
        r = snap_dir_file(dir, SNAP_DIFF_FILE, diff, sizeof(diff), err);
    if (r == 0)
        r = snap_dir_file(dir, SNAP_DIRTY_FILE, bitmap, sizeof(bitmap), err);
    if (r == 0)
        r = snap_mem_merge(into, diff, bitmap, err);
    if (r == 0 && base_is_diff)
        r = snap_mem_merge_bitmaps(into_bitmap, bitmap, err);
    return r;
}

/* Whether a and b are one folder, however spelt (a missing one is no match). */
static bool same_folder(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int snap_merge(const char *dir, char *base_out, size_t base_out_size, struct error *err)
{
    struct snap_reader diff = {0}, base = {0};
    char base_dir[4096];
    int r = load_state(dir, &diff, err);
    if (r == 0 && !(diff.info.flags & SNAP_FLAG_DIFF))
        r = error_fmt(err, -EINVAL,
                      "snapshot %s is a full snapshot, not a diff: only a diff can be merged "
                      "into its base",
                      dir);
    if (r == 0)
        r = snap_dir_read_base(dir, base_dir, sizeof(base_dir), err);
    if (r == 0 && same_folder(dir, base_dir))
        r = error_fmt(err, -ELOOP, "snapshot %s names itself as its base", dir);
    if (r == 0)
        r = load_state(base_dir, &base, err);
    if (r == 0 && base.info.memory_size != diff.info.memory_size)
        r = error_fmt(err, -EINVAL,
                      "base snapshot %s has %llu MiB of RAM, its diff %s %llu MiB: not the same "
                      "VM's",
                      base_dir, (unsigned long long)(base.info.memory_size >> 20), dir,
                      (unsigned long long)(diff.info.memory_size >> 20));
    bool base_is_diff = (base.info.flags & SNAP_FLAG_DIFF) != 0;
    uint32_t base_flags = base.info.flags;
    snap_reader_free(&base);
    if (r == 0)
        r = merge_memory(dir, base_dir, base_is_diff, err);
    if (r == 0)
        r = replace_state(&diff, base_dir, base_flags, err);
    if (r == 0)
        r = replace_config(dir, base_dir, err);
    snap_reader_free(&diff);
    if (r == 0 && base_out)
        snprintf(base_out, base_out_size, "%s", base_dir);
    return r;
}
