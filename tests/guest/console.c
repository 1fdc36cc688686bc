/* console.elf: the first virtio-console device (virtio_mmio.device= on the command line) writes a
 * greeting to hvc0, reads one line of input from it and writes it back; progress and the
 * terminal size (VIRTIO_CONSOLE_F_SIZE) go to the serial port, so a test sees both sides. */
#include "runtime/guest.h"
#include "runtime/virtio.h"

#define VIRTIO_ID_CONSOLE 3
#define F_SIZE            (1ULL << 0)
#define RX_BUFFERS        4
#define RX_BUF_SIZE       64
#define LINE_MAX          128
#define INPUT_WAIT_TSC    200000000000ULL /* about a minute at a few GHz: the host types late */

static struct virtq rxq, txq;
static struct virtio_dev dev;
static uint8_t rx_buf[RX_BUFFERS][RX_BUF_SIZE];
static char tx_buf[LINE_MAX + 32];

static void post_rx(unsigned i)
{
    rxq.desc[i] = (struct vq_desc){(uint64_t)(uintptr_t)rx_buf[i], RX_BUF_SIZE, VQ_DESC_WRITE, 0};
    virtio_submit(&dev, &rxq, (uint16_t)i);
}

static int hvc_write(const char *text)
{
    size_t len = strlen(text);
    memcpy(tx_buf, text, len);
    txq.desc[0] = (struct vq_desc){(uint64_t)(uintptr_t)tx_buf, (uint32_t)len, 0, 0};
    return virtio_submit_and_wait(&dev, &txq, 0) < 0 ? -1 : 0;
}

/* Collects input up to a newline (or carriage return, as a terminal sends Enter). */
static int hvc_read_line(char *line, size_t size)
{
    size_t n = 0;
    uint64_t start = rdtsc();
    while (rdtsc() - start < INPUT_WAIT_TSC) {
        uint32_t id, len;
        if (!virtio_poll_used(&dev, &rxq, &id, &len))
            continue;
        const uint8_t *b = rx_buf[id % RX_BUFFERS];
        for (uint32_t i = 0; i < len && i < RX_BUF_SIZE; i++) {
            if (b[i] == '\n' || b[i] == '\r') {
                line[n] = '\0';
                return 0;
            }
            if (n + 1 < size)
                line[n++] = (char)b[i];
        }
        post_rx(id % RX_BUFFERS);
    }
    line[n] = '\0';
    return -1;
}

int guest_main(void)
{
    if (virtio_find(VIRTIO_ID_CONSOLE, 0, &dev) < 0 || virtio_setup(&dev, F_SIZE, &rxq) < 0 ||
        virtio_setup_queue(&dev, 1, &txq) < 0) {
        puts("console: FAIL: no usable virtio-console device");
        return GUEST_EXIT_FAIL;
    }
    virtio_driver_ok(&dev);
    if (dev.features & F_SIZE) {
        uint32_t size = virtio_config_read32(&dev, 0);
        printf("console: size %ux%u\n", size & 0xffff, size >> 16);
    } else {
        puts("console: no size");
    }
    for (unsigned i = 0; i < RX_BUFFERS && i < rxq.size; i++)
        post_rx(i);
    if (hvc_write("console: hello from hvc0, type a line\n") < 0)
        return GUEST_EXIT_FAIL;
    puts("console: greeting written");
    char line[LINE_MAX];
    if (hvc_read_line(line, sizeof(line)) < 0) {
        printf("console: FAIL: no line of input (got '%s')\n", line);
        return GUEST_EXIT_FAIL;
    }
    printf("console: read '%s'\n", line);
    char reply[LINE_MAX + 32] = "console: got '";
    size_t n = strlen(reply), k = strlen(line);
    memcpy(reply + n, line, k);
    memcpy(reply + n + k, "'\n", 3);
    if (hvc_write(reply) < 0)
        return GUEST_EXIT_FAIL;
    puts("console: done");
    return GUEST_EXIT_PASS;
}
