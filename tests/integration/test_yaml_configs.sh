#!/usr/bin/env bash
# The examples in configs/ through the kiln binary, no VM started: each one validates, and its
# effective configuration (`kiln config`) is exactly that of the flags its comment says it
# equals; the printed YAML loads back to the same text from another folder.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SOURCE_DIR/tests/integration/lib.sh"

[ -x "$KILN" ] || fail "kiln binary '$KILN' is missing or not executable"
CONFIGS=$SOURCE_DIR/configs
export KILN_GUEST_DIR=$GUEST_DIR
# The Linux examples point into the cache of built guests. Where it has not been built, empty
# stand-ins show the definitions are right (validate looks only at the files' existence).
CACHE=${KILN_CACHE_DIR:-$SOURCE_DIR/.cache}
for f in linux-guest/vmlinux linux-guest/initrd.cpio.gz minimal-kernel/current/vmlinux; do
    if [ ! -e "$CACHE/$f" ]; then
        echo "note: $CACHE/$f is not built; validating the Linux examples against stand-ins"
        CACHE=$TEST_TMP/cache
        mkdir -p "$CACHE/linux-guest" "$CACHE/minimal-kernel/current"
        touch "$CACHE/linux-guest/vmlinux" "$CACHE/linux-guest/initrd.cpio.gz" \
            "$CACHE/minimal-kernel/current/vmlinux"
        break
    fi
done
export KILN_CACHE_DIR=$CACHE
truncate -s 1M "$TEST_TMP/scratch.img" "$TEST_TMP/root.img" "$TEST_TMP/data.img"
export KILN_DISK=$TEST_TMP/scratch.img KILN_ROOT_DISK=$TEST_TMP/root.img KILN_DATA_DISK=$TEST_TMP/data.img

# same_config NAME FLAGS...: configs/NAME.yaml validates, and kiln config prints the same for
# the file as for the flags.
same_config() {
    local name=$1
    shift
    status=0
    "$KILN" validate "$CONFIGS/$name.yaml" >"$TEST_TMP/$name.valid" 2>"$TEST_TMP/$name.err" || status=$?
    expect_status 0 "kiln validate configs/$name.yaml: $(cat "$TEST_TMP/$name.err")"
    expect_contains "$TEST_TMP/$name.valid" "$CONFIGS/$name.yaml: valid"
    "$KILN" config "$CONFIGS/$name.yaml" >"$TEST_TMP/$name.file.yaml" 2>"$TEST_TMP/$name.err" ||
        fail "kiln config configs/$name.yaml failed: $(cat "$TEST_TMP/$name.err")"
    "$KILN" config "$@" >"$TEST_TMP/$name.flags.yaml" 2>"$TEST_TMP/$name.err" ||
        fail "kiln config $* failed: $(cat "$TEST_TMP/$name.err")"
    diff -u "$TEST_TMP/$name.flags.yaml" "$TEST_TMP/$name.file.yaml" >"$TEST_TMP/$name.diff" ||
        fail "configs/$name.yaml differs from its flags (- flags, + file): $(cat "$TEST_TMP/$name.diff")"
    # The printed YAML is a VM definition too: from another folder it prints the same again.
    mkdir -p "$TEST_TMP/elsewhere"
    cp "$TEST_TMP/$name.file.yaml" "$TEST_TMP/elsewhere/$name.yaml"
    (cd / && "$KILN" config "$TEST_TMP/elsewhere/$name.yaml") >"$TEST_TMP/$name.again.yaml" ||
        fail "the printed configuration of $name does not load back"
    cmp -s "$TEST_TMP/$name.file.yaml" "$TEST_TMP/$name.again.yaml" ||
        fail "the printed configuration of $name loads back differently: $(diff -u "$TEST_TMP/$name.file.yaml" "$TEST_TMP/$name.again.yaml")"
    echo "ok: configs/$name.yaml"
}

same_config hello --kernel "$GUEST_DIR/hello.elf" --name hello
same_config linux-guest --kernel "$CACHE/linux-guest/vmlinux" \
    --initrd "$CACHE/linux-guest/initrd.cpio.gz" --memory 512M \
    --cmdline "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1" --log-level info --name linux-guest
same_config blk-rng --kernel "$GUEST_DIR/blk.elf" --cmdline blk.serial=kiln-disk-1 \
    --disk "$KILN_DISK,serial=kiln-disk-1" --rng --device-discovery cmdline --name blk-rng
same_config linux-devices --kernel "$CACHE/minimal-kernel/current/vmlinux" --cpus 2 --memory 512M \
    --cmdline "console=hvc0 root=/dev/vda rw rootwait panic=-1" --console virtio \
    --disk "$KILN_ROOT_DISK,serial=root" --disk "$KILN_DATA_DISK,readonly,serial=data,cache=unsafe" \
    --net tap=kiln0,mac=02:00:00:00:00:01 --rng --shutdown-grace 10 --name linux-devices

# Every example is covered above.
for f in "$CONFIGS"/*.yaml; do
    [ -f "$TEST_TMP/$(basename "$f" .yaml).file.yaml" ] || fail "$f is not compared with its flags in this test"
done

# Relative to the file, not to where kiln runs: the same output from /.
(cd / && "$KILN" config "$CONFIGS/hello.yaml") >"$TEST_TMP/hello.from-root.yaml"
cmp -s "$TEST_TMP/hello.file.yaml" "$TEST_TMP/hello.from-root.yaml" ||
    fail "configs/hello.yaml means something else when kiln runs in /"

# Flags given with a file win; --disk replaces the file's disks.
"$KILN" config "$CONFIGS/blk-rng.yaml" --cpus 2 --disk "$KILN_ROOT_DISK" >"$TEST_TMP/override.yaml"
expect_contains "$TEST_TMP/override.yaml" "cpus: 2"
expect_contains "$TEST_TMP/override.yaml" "path: \"$(realpath "$KILN_ROOT_DISK")\""
expect_not_contains "$TEST_TMP/override.yaml" "serial:"
[ "$(grep -c 'path:' "$TEST_TMP/override.yaml")" -eq 2 ] ||
    fail "expected the kernel and one disk: $(cat "$TEST_TMP/override.yaml")"
echo "PASS"
