#!/usr/bin/env bash
# Compare the verify engine with dd (O_DIRECT, bs=4M) and with the vendor's method
# (cp in, sync, cp back, diff) on an ext4 file system mounted from a loop device.
#
# Usage (root): benches/verify.sh
# Environment: SIZE_MIB (test file, default 1024), IMG_MIB (loop image, default
# SIZE_MIB + 512), RUNS (default 3; medians are printed), WORKDIR (where the image and the
# vendor's copies live, default a new directory under /work), LOOP_DIRECT_IO (on|off,
# default on: the loop device then reads and writes its backing file with O_DIRECT, so
# the figures are the disk's and not the host page cache's).
#
# For each method the script also prints how many bytes the loop device really READ
# (from /sys/block/loopN/stat) while the method read its data back: the vendor's
# copy-back is served from the page cache and reads next to nothing from the device.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
IMG_MIB=${IMG_MIB:-$((SIZE_MIB + 512))}
RUNS=${RUNS:-3}
LOOP_DIRECT_IO=${LOOP_DIRECT_IO:-on}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BENCH=$TARGET/release/examples/verify_bench
export LC_ALL=C

if [ "$(id -u)" -ne 0 ]; then
    echo "verify.sh: needs root (losetup, mount)" >&2
    exit 2
fi
for t in losetup mkfs.ext4 mount umount dd cp diff sync; do
    command -v "$t" >/dev/null || { echo "verify.sh: $t not found" >&2; exit 2; }
done

echo "building the verify example (release)..." >&2
(cd "$REPO" && cargo build --release --quiet --example verify_bench)

WORKDIR=${WORKDIR:-$(mktemp -d /work/verify-bench.XXXXXX)}
MNT=$WORKDIR/mnt
IMG=$WORKDIR/backing.img
LOOP=
cleanup() {
    umount "$MNT" 2>/dev/null || true
    if [ -n "$LOOP" ]; then losetup -d "$LOOP" || true; fi
    rm -rf "$WORKDIR"
}
trap cleanup EXIT
mkdir -p "$MNT"
truncate -s "${IMG_MIB}M" "$IMG"
mkfs.ext4 -q -F "$IMG"
LOOP=$(losetup -f --show --direct-io="$LOOP_DIRECT_IO" "$IMG")
mount "$LOOP" "$MNT"
DEV=$(basename "$LOOP")
COUNT=$((SIZE_MIB / 4))
BYTES=$((COUNT * 4 * 1024 * 1024))

# Bytes read by the loop device so far (field 3 of the stat file: 512-byte sectors read).
dev_read_bytes() { awk '{ printf "%.0f\n", $3 * 512 }' "/sys/block/$DEV/stat"; }
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
# dd's summary line: "N bytes (...) copied, S s, R MB/s"
dd_mbps() { awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") s = $(i-1); printf "%.1f", $1 / s / 1e6 }'; }
json_field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2 | tr -d '"'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "loop device $LOOP (direct-io=$LOOP_DIRECT_IO) backed by $IMG, ext4 on $MNT;" \
     "$SIZE_MIB MiB per run, $RUNS runs" >&2
head -c "$BYTES" /dev/urandom > "$WORKDIR/src.dat"

: > "$WORKDIR/dd_w"; : > "$WORKDIR/dd_r"; : > "$WORKDIR/v_w"; : > "$WORKDIR/v_r"
: > "$WORKDIR/vendor"; : > "$WORKDIR/vendor_read"; : > "$WORKDIR/dd_dev"; : > "$WORKDIR/v_dev"
for run in $(seq "$RUNS"); do
    dd if=/dev/zero of="$MNT/dd.dat" bs=4M count="$COUNT" oflag=direct 2>&1 | dd_mbps >> "$WORKDIR/dd_w"
    echo >> "$WORKDIR/dd_w"
    before=$(dev_read_bytes)
    dd if="$MNT/dd.dat" of=/dev/null bs=4M iflag=direct 2>&1 | dd_mbps >> "$WORKDIR/dd_r"
    echo >> "$WORKDIR/dd_r"
    echo $(( $(dev_read_bytes) - before )) >> "$WORKDIR/dd_dev"
    rm -f "$MNT/dd.dat"

    before=$(dev_read_bytes)
    out=$("$BENCH" "$MNT" "$SIZE_MIB")
    echo $(( $(dev_read_bytes) - before )) >> "$WORKDIR/v_dev"
    echo "run $run verify: $out" >&2
    [ "$(echo "$out" | json_field passed)" = true ] || { echo "verify failed: $out" >&2; exit 1; }
    echo "$out" | json_field write_mb_s >> "$WORKDIR/v_w"
    echo "$out" | json_field read_mb_s >> "$WORKDIR/v_r"

    # The vendor's procedure: copy in, sync, copy back, compare.
    t0=$(now)
    cp "$WORKDIR/src.dat" "$MNT/vendor.dat"
    sync
    t1=$(now)
    before=$(dev_read_bytes)
    cp "$MNT/vendor.dat" "$WORKDIR/back.dat"
    diff -q "$WORKDIR/src.dat" "$WORKDIR/back.dat" >/dev/null
    t2=$(now)
    echo $(( $(dev_read_bytes) - before )) >> "$WORKDIR/vendor_read"
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$BYTES" \
        'BEGIN { printf "%.1f %.1f\n", n / (b - a) / 1e6, n / (c - b) / 1e6 }' >> "$WORKDIR/vendor"
    rm -f "$MNT/vendor.dat" "$WORKDIR/back.dat"
done

DW=$(median < "$WORKDIR/dd_w"); DR=$(median < "$WORKDIR/dd_r")
VW=$(median < "$WORKDIR/v_w"); VR=$(median < "$WORKDIR/v_r")
CW=$(cut -d' ' -f1 "$WORKDIR/vendor" | median); CR=$(cut -d' ' -f2 "$WORKDIR/vendor" | median)
printf '\n%-34s %10s %10s %16s\n' "method ($SIZE_MIB MiB, median of $RUNS)" "write MB/s" "read MB/s" "device read (B)"
printf '%-34s %10s %10s %16s\n' "dd oflag/iflag=direct bs=4M" "$DW" "$DR" "$(median < "$WORKDIR/dd_dev")"
printf '%-34s %10s %10s %16s\n' "verify engine (O_DIRECT, checked)" "$VW" "$VR" "$(median < "$WORKDIR/v_dev")"
printf '%-34s %10s %10s %16s\n' "vendor cp+sync / cp back+diff" "$CW" "$CR" "$(median < "$WORKDIR/vendor_read")"
printf 'ratio verify/dd: write %s, read %s\n' \
    "$(awk -v a="$VW" -v b="$DW" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$VR" -v b="$DR" 'BEGIN { printf "%.2f", a / b }')"
printf 'raw runs: dd write [%s] dd read [%s] verify write [%s] verify read [%s]\n' \
    "$(paste -sd' ' "$WORKDIR/dd_w" | tr -s ' ')" "$(paste -sd' ' "$WORKDIR/dd_r" | tr -s ' ')" \
    "$(paste -sd' ' "$WORKDIR/v_w")" "$(paste -sd' ' "$WORKDIR/v_r")"
