#!/bin/sh
# /init of the nested tier's L1 (scripts/nested.sh): loads KVM for AMD SVM and tun, runs the
# command in /nested/cmd, sends /out back through the second serial port, and powers off.
export PATH=/nested/bin:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root KILN_CACHE_DIR=/nested/cache
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# cgroup v2 where a systemd host has it, with every controller (cpu among them): nothing in L1
# binds one to cgroup v1, unlike our hybrid hosts. kiln's --cpu-quota needs it (docs/placement.md).
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm /tmp /run /out /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ip link set lo up
# The L2 console lines that kiln prints go to this console: keep L1's own kernel quiet.
echo 1 >/proc/sys/kernel/printk

say() { echo "kiln-nested: $*"; }
say "L1 up after $(cut -d' ' -f1 /proc/uptime) s (kernel $(uname -r), $(nproc) CPUs)"

status=0
for module in $(cat /lib/modules/nested/order); do
    insmod "/lib/modules/nested/$module" || say "insmod $module failed"
done
if ! grep -qw svm /proc/cpuinfo; then
    say "SKIP: the L1 CPU has no svm flag (QEMU's TCG did not emulate AMD SVM)"
    status=77
elif [ ! -c /dev/kvm ]; then
    say "SKIP: no /dev/kvm in L1 (kvm-amd did not load: $(dmesg | grep -i -E 'kvm|svm' | tail -n 1))"
    status=77
else
    say "/dev/kvm ready ($(dmesg | grep -o -E 'Nested (Virtualization|Paging) enabled' | tr '\n' ' '))"
    # A heartbeat on the console: the host (watch_lockup in scripts/nested.sh) takes a console
    # silent for minutes as an L1 that froze without a word, which TCG's emulated SVM does.
    while :; do
        sleep 30
        echo "kiln-nested-alive $(cut -d' ' -f1 /proc/uptime)"
    done &
    heartbeat=$!
    cd /nested/repo || exit 1
    sh /nested/cmd </dev/null
    status=$?
    kill "$heartbeat"
fi
say "command exited $status after $(cut -d' ' -f1 /proc/uptime) s"

# The host decodes this between the two markers (base64: the tty may add carriage returns).
echo "$status" >/out/.status
stty -F /dev/ttyS1 raw -echo 2>/dev/null
{
    echo "kiln-nested-out-begin"
    tar -c -C /out . | base64
    echo "kiln-nested-out-end"
} >/dev/ttyS1
sync
poweroff -f
