/* virtio-blk: config space and features, the request queue's notify handler, and the
 * hand-off of each request to libuv's thread pool and its completion back on the loop. */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/util/container_of.h"
#include "kiln/util/counter.h"
#include "kiln/host/disk_image.h"
#include "kiln/devices/io_throttle.h"
#include "kiln/devices/virtio_blk.h"
#include "kiln/devices/virtio_blk_request.h"
#include "kiln/util/iov.h"
#include "kiln/util/work_gate.h"

#define BLK_SIZE_MAX         (1u << 20) /* largest single data buffer we advertise (size_max) */
#define BLK_MAX_ZERO_SECTORS (1u << 22) /* 2 GiB per discard/write-zeroes segment */
/* Chains taken per doorbell before the loop gets a turn (the rest are taken on a re-kick):
 * each is a parse and a hand-off, a few microseconds, so a guest refilling the queue as fast
 * as we empty it holds the loop for well under a millisecond at a time. */
#define BLK_CHAINS_PER_CALL 32

struct virtio_blk {
    struct virtio_dev vdev;
    struct disk_image image;
    char *path; /* for messages */
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    enum disk_cache cache;
    unsigned queue_size;
    uv_loop_t *loop;
    const struct log *log;
    struct virtio_blk_config config;
    bool write_cache;         /* the guest-visible WCE: false means every write is made durable */
    unsigned in_flight;       /* requests handed to the thread pool, not yet completed */
    struct work_gate io_gate; /* closed by a reset: no earlier request touches memory after it */
    struct virtio_blk_counters counters; /* kiln/util/counter.h: read from any thread */
    struct io_throttle throttle;         /* bw= and iops=: each request's bytes and 1 op */
    struct virtq_chain chain;            /* scratch for popping on the loop thread */
    struct blk_request request;
};

/* One request on the thread pool. */
struct blk_io {
    uv_work_t work;
    struct virtio_blk *blk;
    uint32_t generation; /* the device's, at submission: a reset in between drops it */
    uint32_t gate_epoch; /* io_gate's, at submission: a reset in between cancels the I/O */
    unsigned queue;
    uint16_t head;
    uint8_t *status;
    uint32_t used_len;
    uint32_t type;
    uint64_t sector;
    uint64_t data_len;   /* for the counters */
    bool durable_writes; /* fdatasync after a write (write cache off) */
    bool flush_is_noop;  /* cache=unsafe */
    int result;          /* 0 or -errno, from the worker */
    unsigned nsegments;
    struct virtio_blk_discard_write_zeroes segments[BLK_MAX_DISCARD_SEGMENTS];
    int ndata;
    struct iovec data[]; /* guest buffers, already bounds-checked */
};

static int do_segments(struct blk_io *io)
{
    for (unsigned i = 0; i < io->nsegments; i++) {
        const struct virtio_blk_discard_write_zeroes *seg = &io->segments[i];
        uint64_t offset = seg->sector * DISK_SECTOR_SIZE;
        uint64_t len = (uint64_t)seg->num_sectors * DISK_SECTOR_SIZE;
        int r = io->type == VIRTIO_BLK_T_DISCARD
                    ? disk_image_discard(&io->blk->image, offset, len)
                    : disk_image_zero(&io->blk->image, offset, len,
                                      seg->flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The request's I/O proper, between entering and leaving the gate. */
static void do_io(struct blk_io *io)
{
    const struct disk_image *img = &io->blk->image;
    uint64_t offset = io->sector * DISK_SECTOR_SIZE;
    switch (io->type) {
    case VIRTIO_BLK_T_IN:
        io->result = disk_image_readv(img, io->data, io->ndata, offset);
        break;
    case VIRTIO_BLK_T_OUT:
        io->result = disk_image_writev(img, io->data, io->ndata, offset);
        if (io->result == 0 && io->durable_writes)
            io->result = disk_image_flush(img);
        break;
    case VIRTIO_BLK_T_FLUSH:
        io->result = io->flush_is_noop ? 0 : disk_image_flush(img);
        break;
    default: /* DISCARD, WRITE_ZEROES */
        io->result = do_segments(io);
        if (io->result == 0 && io->type == VIRTIO_BLK_T_WRITE_ZEROES && io->durable_writes)
            io->result = disk_image_flush(img);
        break;
    }
}

/* Runs on a thread-pool thread: only the image and the request's own buffers are touched. A
 * request the driver reset away before it started does nothing: its buffers may belong to
 * something else by now, and its write would land after the driver's post-reset writes. */
static void blk_io_work(uv_work_t *work)
{
    struct blk_io *io = work->data;
    if (!work_gate_enter(&io->blk->io_gate, io->gate_epoch)) {
        io->result = -ECANCELED;
        return;
    }
    do_io(io);
    work_gate_leave(&io->blk->io_gate);
}

static struct virtio_blk *blk_of(struct virtio_dev *d)
{
    return container_of(d, struct virtio_blk, vdev);
}

/* Counts one answered request by its type and the status it got. */
static void count_answer(struct virtio_blk *blk, uint32_t type, uint64_t data_len, uint8_t value)
{
    struct virtio_blk_counters *c = &blk->counters;
    if (value != VIRTIO_BLK_S_OK) {
        counter_add(&c->errors, 1);
        return;
    }
    switch (type) {
    case VIRTIO_BLK_T_IN:
        counter_add(&c->read_ops, 1);
        counter_add(&c->read_bytes, data_len);
        break;
    case VIRTIO_BLK_T_OUT:
        counter_add(&c->write_ops, 1);
        counter_add(&c->write_bytes, data_len);
        break;
    case VIRTIO_BLK_T_FLUSH:
        counter_add(&c->flush_ops, 1);
        break;
    case VIRTIO_BLK_T_DISCARD:
        counter_add(&c->discard_ops, 1);
        break;
    case VIRTIO_BLK_T_WRITE_ZEROES:
        counter_add(&c->write_zeroes_ops, 1);
        break;
    default: /* GET_ID: no counter of its own */
        break;
    }
}

void virtio_blk_counters(const struct virtio_blk *blk, struct virtio_blk_counters *out)
{
    const struct virtio_blk_counters *c = &blk->counters;
    out->read_ops = counter_read(&c->read_ops);
    out->read_bytes = counter_read(&c->read_bytes);
    out->write_ops = counter_read(&c->write_ops);
    out->write_bytes = counter_read(&c->write_bytes);
    out->flush_ops = counter_read(&c->flush_ops);
    out->discard_ops = counter_read(&c->discard_ops);
    out->write_zeroes_ops = counter_read(&c->write_zeroes_ops);
    out->errors = counter_read(&c->errors);
}

static void complete(struct virtio_dev *d, unsigned q, uint16_t head, uint8_t *status,
                     uint8_t value, uint32_t used_len)
{
    *status = value;
    virtio_dev_push(d, q, head, used_len);
}

/* Back on the loop thread. */
static void blk_io_done(uv_work_t *work, int status)
{
    struct blk_io *io = work->data;
    struct virtio_blk *blk = io->blk;
    struct virtio_dev *d = &blk->vdev;
    virtio_dev_lock(d);
    if (virtio_dev_generation(d) == io->generation) {
        uint8_t value = VIRTIO_BLK_S_OK;
        if (io->result < 0) {
            value = VIRTIO_BLK_S_IOERR;
            log_warn(blk->log, "disk '%s': I/O error: %s", blk->path, strerror(-io->result));
        }
        complete(d, io->queue, io->head, io->status, value, io->used_len);
        count_answer(blk, io->type, io->data_len, value);
        virtio_dev_notify_used(d, io->queue);
    }
    virtio_dev_unlock(d);
    blk->in_flight--;
    free(io);
}

static int submit(struct virtio_blk *blk, unsigned q, const struct blk_request *req, uint16_t head)
{
    struct blk_io *io = malloc(sizeof(*io) + (size_t)req->ndata * sizeof(struct iovec));
    if (!io)
        return -ENOMEM;
    io->work.data = io;
    io->blk = blk;
    io->generation = virtio_dev_generation(&blk->vdev);
    io->gate_epoch = work_gate_epoch(&blk->io_gate);
    io->queue = q;
    io->head = head;
    io->status = req->status;
    io->used_len = 1 + (req->type == VIRTIO_BLK_T_IN ? (uint32_t)req->data_len : 0);
    io->type = req->type;
    io->sector = req->sector;
    io->data_len = req->data_len;
    io->durable_writes = !blk->write_cache && blk->cache != DISK_CACHE_UNSAFE;
    io->flush_is_noop = blk->cache == DISK_CACHE_UNSAFE;
    io->result = 0;
    io->nsegments = req->nsegments;
    memcpy(io->segments, req->segments, req->nsegments * sizeof(req->segments[0]));
    io->ndata = req->ndata;
    memcpy(io->data, req->data, (size_t)req->ndata * sizeof(struct iovec));
    int r = uv_queue_work(blk->loop, &io->work, blk_io_work, blk_io_done);
    if (r < 0) {
        free(io);
        return r;
    }
    blk->in_flight++;
    return 0;
}

/* GET_ID: the serial, up to 20 bytes, NUL-padded (not terminated when it is 20 bytes long). */
static uint32_t write_serial(struct virtio_blk *blk, const struct blk_request *req)
{
    char id[VIRTIO_BLK_ID_BYTES] = {0};
    memcpy(id, blk->serial, strnlen(blk->serial, sizeof(id)));
    return (uint32_t)iov_from_buf(req->data, (unsigned)req->ndata, 0, id, sizeof(id));
}

/* Answers a request at once, or hands it to the thread pool; false when the rate limit holds
 * it back (the chain is put back, and the throttle's timer kicks the queue). */
static bool handle_request(struct virtio_dev *d, struct virtio_blk *blk, unsigned q, uint16_t head)
{
    struct blk_request *req = &blk->request;
    struct blk_geometry geo = {.capacity = blk->image.size / DISK_SECTOR_SIZE,
                               .readonly = blk->image.readonly,
                               .max_segment_sectors = BLK_MAX_ZERO_SECTORS};
    enum blk_parse_result r = blk_request_parse(&blk->chain, &geo, req);
    if (r == BLK_REQUEST_UNANSWERABLE) {
        virtio_dev_reject(d, q, head, req->why);
        return true;
    }
    /* Only requests that reach the disk are limited: bytes for reads and writes, one op for
     * each (flushes, discards and write-zeroes included). */
    bool data = req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT;
    if (r == BLK_REQUEST_OK && req->type != VIRTIO_BLK_T_GET_ID &&
        !io_throttle_admit(&blk->throttle, data ? req->data_len : 0, 1)) {
        virtio_dev_unpop(d, q);
        return false;
    }
    if (req->why)
        virtio_dev_log_once(d, "bad request: %s", req->why);
    if (r == BLK_REQUEST_DONE) {
        complete(d, q, head, req->status, req->status_value, 1);
        count_answer(blk, req->type, req->data_len, req->status_value);
    } else if (req->type == VIRTIO_BLK_T_GET_ID) {
        uint32_t written = write_serial(blk, req);
        complete(d, q, head, req->status, VIRTIO_BLK_S_OK, written + 1);
    } else if (submit(blk, q, req, head) < 0) {
        complete(d, q, head, req->status, VIRTIO_BLK_S_IOERR, 1);
        count_answer(blk, req->type, req->data_len, VIRTIO_BLK_S_IOERR);
        virtio_dev_log_once(d, "cannot queue a request: out of memory");
    }
    return true;
}

static bool take_request(struct virtio_dev *d, unsigned q, struct virtq_chain *chain)
{
    return handle_request(d, blk_of(d), q, chain->head);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_blk *blk = blk_of(d);
    if (io_throttle_blocked(&blk->throttle))
        return; /* the throttle's timer kicks the queue when the tokens are back */
    virtio_dev_drain(d, q, &blk->chain, BLK_CHAINS_PER_CALL, NULL, take_request);
    virtio_dev_notify_used(d, q);
}

/* The rate limit's tokens are back: the loop takes up the queue as if its doorbell rang. */
static void resume_queue(struct io_throttle *t, void *opaque)
{
    virtio_dev_kick(opaque, 0);
}

static void blk_config_read(struct virtio_dev *d, uint32_t offset, uint8_t *data, unsigned size)
{
    struct virtio_blk *blk = blk_of(d);
    virtio_dev_config_copy(&blk->config, sizeof(blk->config), offset, data, size);
}

/* Only the writeback byte is writable, and only with VIRTIO_BLK_F_CONFIG_WCE. */
static void blk_config_write(struct virtio_dev *d, uint32_t offset, const uint8_t *data,
                             unsigned size)
{
    struct virtio_blk *blk = blk_of(d);
    if (offset != offsetof(struct virtio_blk_config, wce) || size != 1 ||
        !virtio_dev_feature(d, VIRTIO_BLK_F_CONFIG_WCE)) {
        virtio_dev_log_once(d, "write to read-only config field at offset %u", offset);
        return;
    }
    blk->config.wce = data[0] ? 1 : 0;
    blk->write_cache = data[0] != 0;
}

static void blk_activate(struct virtio_dev *d)
{
    struct virtio_blk *blk = blk_of(d);
    /* A driver that does not negotiate CONFIG_WCE gets a write cache only if it can flush. */
    if (!virtio_dev_feature(d, VIRTIO_BLK_F_CONFIG_WCE))
        blk->write_cache = virtio_dev_feature(d, VIRTIO_BLK_F_FLUSH) && blk->config.wce;
}

/* On the vCPU thread that wrote the status, device lock held. Waiting here cannot deadlock:
 * workers never take the device lock, and completions (on the loop thread, which does) are
 * not waited for; they find the generation changed and drop the request. */
static void blk_reset(struct virtio_dev *d)
{
    struct virtio_blk *blk = blk_of(d);
    work_gate_close(&blk->io_gate);
    blk->config.wce = blk->cache != DISK_CACHE_WRITETHROUGH;
    blk->write_cache = blk->config.wce;
}

static const struct virtio_dev_ops virtio_blk_ops = {
    .config_read = blk_config_read,
    .config_write = blk_config_write,
    .activate = blk_activate,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
};

static void fill_config(struct virtio_blk *blk)
{
    struct virtio_blk_config *c = &blk->config;
    memset(c, 0, sizeof(*c));
    c->capacity = blk->image.size / DISK_SECTOR_SIZE;
    c->size_max = BLK_SIZE_MAX;
    c->seg_max = blk->queue_size - 2; /* the header and the status byte take two */
    c->blk_size = DISK_SECTOR_SIZE;
    c->wce = blk->cache != DISK_CACHE_WRITETHROUGH;
    c->num_queues = 1;
    c->max_discard_sectors = BLK_MAX_ZERO_SECTORS;
    c->max_discard_seg = BLK_MAX_DISCARD_SEGMENTS;
    c->discard_sector_alignment = 1;
    c->max_write_zeroes_sectors = BLK_MAX_ZERO_SECTORS;
    c->max_write_zeroes_seg = BLK_MAX_DISCARD_SEGMENTS;
    c->write_zeroes_may_unmap = 1;
    blk->write_cache = c->wce;
}

static void describe(const struct virtio_blk *blk, struct virtio_device_info *info)
{
    uint64_t features = (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
                        (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
                        (1ULL << VIRTIO_BLK_F_CONFIG_WCE);
    if (blk->image.readonly)
        features |= 1ULL << VIRTIO_BLK_F_RO;
    else
        features |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
    memset(info, 0, sizeof(*info));
    info->name = "virtio-blk";
    info->device_id = VIRTIO_ID_BLOCK;
    info->features = features;
    info->num_queues = 1;
    info->queue_max_size = (uint16_t)blk->queue_size;
    info->config_size = sizeof(blk->config);
    info->ops = &virtio_blk_ops;
}

int virtio_blk_create(struct virtio_blk **out, const struct disk_config *disk, uv_loop_t *loop,
                      const struct guest_mem *mem, const struct log *log, struct error *err)
{
    struct virtio_blk *blk = calloc(1, sizeof(*blk));
    if (!blk || !(blk->path = strdup(disk->path))) {
        free(blk);
        return error_fmt(err, -ENOMEM, "--disk: out of memory");
    }
    int r = disk_image_open(&blk->image, disk, err);
    if (r < 0) {
        free(blk->path);
        free(blk);
        return r;
    }
    if (disk->serial)
        snprintf(blk->serial, sizeof(blk->serial), "%s", disk->serial);
    work_gate_init(&blk->io_gate);
    io_throttle_init(&blk->throttle, resume_queue, &blk->vdev);
    blk->cache = disk->cache;
    blk->queue_size = disk->queue_size;
    blk->loop = loop;
    blk->log = log;
    fill_config(blk);
    struct virtio_device_info info;
    describe(blk, &info);
    r = virtio_dev_init(&blk->vdev, &info, mem, log, err);
    if (r < 0) {
        work_gate_destroy(&blk->io_gate);
        disk_image_close(&blk->image);
        free(blk->path);
        free(blk);
        return r;
    }
    r = io_throttle_set(&blk->throttle, &disk->limit, "--disk", err);
    if (r < 0) {
        virtio_blk_destroy(blk);
        return r;
    }
    *out = blk;
    return 0;
}

int virtio_blk_set_limit(struct virtio_blk *blk, const struct rate_limit_config *limit,
                         struct error *err)
{
    virtio_dev_lock(&blk->vdev);
    int r = io_throttle_set(&blk->throttle, limit, blk->vdev.label, err);
    virtio_dev_unlock(&blk->vdev);
    return r;
}

void virtio_blk_get_limit(struct virtio_blk *blk, struct rate_limit_config *limit)
{
    virtio_dev_lock(&blk->vdev);
    *limit = blk->throttle.config;
    virtio_dev_unlock(&blk->vdev);
}

void virtio_blk_limit_counters(const struct virtio_blk *blk, struct io_throttle_counters *out)
{
    io_throttle_read_counters(&blk->throttle, out);
}

int virtio_blk_attach(struct virtio_blk *blk, struct error *err)
{
    return io_throttle_attach(&blk->throttle, blk->loop, err);
}

void virtio_blk_detach(struct virtio_blk *blk)
{
    io_throttle_detach(&blk->throttle);
}

struct virtio_dev *virtio_blk_dev(struct virtio_blk *blk)
{
    return &blk->vdev;
}

int virtio_blk_save(struct virtio_blk *blk, struct virtio_blk_state *out, struct error *err)
{
    virtio_dev_lock(&blk->vdev);
    int r = 0;
    if (blk->in_flight > 0) {
        r = error_fmt(err, -EBUSY, "%s: %u requests still in flight", blk->vdev.label,
                      blk->in_flight);
    } else {
        memset(out, 0, sizeof(*out));
        virtio_dev_save(&blk->vdev, &out->dev);
        out->wce = blk->config.wce;
        out->write_cache = blk->write_cache;
    }
    virtio_dev_unlock(&blk->vdev);
    return r;
}

int virtio_blk_restore(struct virtio_blk *blk, const struct virtio_blk_state *in, struct error *err)
{
    if (in->wce > 1 || in->write_cache > 1)
        return error_fmt(err, -EINVAL, "%s: saved write-cache setting %u/%u is not 0 or 1",
                         blk->vdev.label, in->wce, in->write_cache);
    virtio_dev_lock(&blk->vdev);
    int r = virtio_dev_restore(&blk->vdev, &in->dev, err);
    if (r == 0) {
        blk->config.wce = in->wce;
        blk->write_cache = in->write_cache;
    }
    virtio_dev_unlock(&blk->vdev);
    return r;
}

int virtio_blk_flush_image(struct virtio_blk *blk, struct error *err)
{
    int r = disk_image_flush(&blk->image);
    if (r < 0)
        return error_fmt(err, r, "%s: flushing the disk image: %s", blk->path, strerror(-r));
    return 0;
}

int virtio_blk_hand_over(struct virtio_blk *blk, bool release, struct error *err)
{
    if (release) {
        disk_image_unlock(&blk->image);
        return 0;
    }
    return disk_image_lock(&blk->image, blk->path, err);
}

int virtio_blk_image_fd(const struct virtio_blk *blk)
{
    return blk->image.fd;
}

unsigned virtio_blk_in_flight(const struct virtio_blk *blk)
{
    return blk->in_flight;
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
    if (!blk)
        return;
    virtio_dev_destroy(&blk->vdev);
    work_gate_destroy(&blk->io_gate);
    disk_image_close(&blk->image);
    free(blk->path);
    free(blk);
}
