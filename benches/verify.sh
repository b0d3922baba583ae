#!/usr/bin/env bash
# Compare the verify engine with dd (O_DIRECT, bs=4M) on ext4 mounted from a loop device,
# once with the loop device backed by a file on tmpfs (memory: the engine's own cost shows)
# and once backed by a file on disk.
#
# Usage (root): benches/verify.sh
# Environment:
#   SIZE_MIB        test file per run, default 1024
#   RUNS            paired runs per backing, default 9 (medians are printed)
#   BACKINGS        which loop backings, default "tmpfs disk"
#   TMPFS_DIR       where the tmpfs image lives, default a new directory under /dev/shm
#   DISK_DIR        where the disk image lives, default a new directory under /work
#   LOOP_DIRECT_IO  on|off, default on: the loop device reads and writes its backing file
#                   with O_DIRECT, so the figures are the backing's and not the host page
#                   cache's (tmpfs takes O_DIRECT since Linux 6.6)
#   VERIFY_ARGS     extra arguments for examples/verify_bench (e.g. "--threads 2")
#   VENDOR          1 to also time the vendor's method (cp in, sync, cp back, diff)
#
# A pair is dd then the engine, or the engine then dd (alternating, so neither always runs
# on a warmer or quieter machine): dd writes with oflag=direct conv=fdatasync (the engine's
# write time includes its fdatasync too) and reads back with iflag=direct. For each backing
# the script prints the medians, the median of the per-pair ratios (engine / dd) and the
# raw runs. It also prints how many bytes the loop device really READ (from
# /sys/block/loopN/stat) while each method read its data back: the vendor's copy-back is
# served from the page cache and reads next to nothing from the device.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
IMG_MIB=$((SIZE_MIB + 512))
RUNS=${RUNS:-9}
BACKINGS=${BACKINGS:-tmpfs disk}
LOOP_DIRECT_IO=${LOOP_DIRECT_IO:-on}
VERIFY_ARGS=${VERIFY_ARGS:-}
VENDOR=${VENDOR:-0}
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

COUNT=$((SIZE_MIB / 4))
BYTES=$((COUNT * 4 * 1024 * 1024))
RES=$(mktemp -d /tmp/verify-bench-results.XXXXXX)
MNT='' LOOP='' DIR=''
cleanup() {
    if [ -n "$MNT" ]; then umount "$MNT" 2>/dev/null || true; fi
    if [ -n "$LOOP" ]; then losetup -d "$LOOP" 2>/dev/null || true; fi
    if [ -n "$DIR" ]; then rm -rf "$DIR"; fi
    MNT='' LOOP='' DIR=''
}
trap 'cleanup; rm -rf "$RES"' EXIT

# Bytes read by the loop device so far (field 3 of the stat file: 512-byte sectors read).
dev_read_bytes() { awk '{ printf "%.0f\n", $3 * 512 }' "/sys/block/$(basename "$LOOP")/stat"; }
now() { date +%s.%N; }
# dd's summary line: "N bytes (...) copied, S s, R MB/s"; recomputed in MB/s (10^6).
dd_mbps() { awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") s = $(i-1); printf "%.1f\n", $1 / s / 1e6 }'; }
json_field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2 | tr -d '"'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Per-pair ratios of two files of figures, line by line.
ratios() { paste -d' ' "$1" "$2" | awk '{ printf "%.3f\n", $1 / $2 }'; }

run_dd() {
    local w r before
    w=$(dd if=/dev/zero of="$MNT/dd.dat" bs=4M count="$COUNT" oflag=direct conv=fdatasync 2>&1 | dd_mbps)
    before=$(dev_read_bytes)
    r=$(dd if="$MNT/dd.dat" of=/dev/null bs=4M iflag=direct 2>&1 | dd_mbps)
    echo $(( $(dev_read_bytes) - before )) >> "$RES/$1.dd_dev"
    rm -f "$MNT/dd.dat"
    echo "$w" >> "$RES/$1.dd_w"
    echo "$r" >> "$RES/$1.dd_r"
}

run_verify() {
    local out before
    before=$(dev_read_bytes)
    # shellcheck disable=SC2086  # VERIFY_ARGS is a list of arguments
    out=$("$BENCH" "$MNT" "$SIZE_MIB" $VERIFY_ARGS)
    echo $(( $(dev_read_bytes) - before )) >> "$RES/$1.v_dev"
    [ "$(echo "$out" | json_field passed)" = true ] || { echo "verify failed: $out" >&2; exit 1; }
    [ "$(echo "$out" | json_field write_mode)" = Direct ] || echo "note: verify ran buffered: $out" >&2
    echo "$out" | json_field write_mb_s >> "$RES/$1.v_w"
    echo "$out" | json_field read_mb_s >> "$RES/$1.v_r"
}

run_vendor() {
    local t0 t1 t2 before
    t0=$(now)
    cp "$DIR/src.dat" "$MNT/vendor.dat"
    sync
    t1=$(now)
    before=$(dev_read_bytes)
    cp "$MNT/vendor.dat" "$DIR/back.dat"
    diff -q "$DIR/src.dat" "$DIR/back.dat" >/dev/null
    t2=$(now)
    echo $(( $(dev_read_bytes) - before )) >> "$RES/$1.vendor_dev"
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$BYTES" \
        'BEGIN { printf "%.1f %.1f\n", n / (b - a) / 1e6, n / (c - b) / 1e6 }' >> "$RES/$1.vendor"
    rm -f "$MNT/vendor.dat" "$DIR/back.dat"
}

# The load goes with the figures: on a shared machine it moves them more than any change.
LOAD_BEFORE=$(uptime)
for backing in $BACKINGS; do
    case $backing in
        tmpfs) DIR=$(mktemp -d "${TMPFS_DIR:-/dev/shm}/verify-bench.XXXXXX") ;;
        disk) DIR=$(mktemp -d "${DISK_DIR:-/work}/verify-bench.XXXXXX") ;;
        *) echo "verify.sh: unknown backing $backing (tmpfs or disk)" >&2; exit 2 ;;
    esac
    MNT=$DIR/mnt
    mkdir -p "$MNT"
    truncate -s "${IMG_MIB}M" "$DIR/backing.img"
    mkfs.ext4 -q -F "$DIR/backing.img"
    LOOP=$(losetup -f --show --direct-io="$LOOP_DIRECT_IO" "$DIR/backing.img")
    mount "$LOOP" "$MNT"
    echo "$backing: loop device $LOOP (direct-io=$LOOP_DIRECT_IO) backed by $DIR/backing.img," \
         "ext4 on $MNT; $SIZE_MIB MiB per run, $RUNS paired runs" >&2
    if [ "$VENDOR" = 1 ]; then head -c "$BYTES" /dev/urandom > "$DIR/src.dat"; fi
    for run in $(seq "$RUNS"); do
        if [ $((run % 2)) = 1 ]; then run_dd "$backing"; run_verify "$backing"
        else run_verify "$backing"; run_dd "$backing"; fi
        echo "  run $run: dd $(tail -1 "$RES/$backing.dd_w")/$(tail -1 "$RES/$backing.dd_r")," \
             "verify $(tail -1 "$RES/$backing.v_w")/$(tail -1 "$RES/$backing.v_r") MB/s (write/read)" >&2
        if [ "$VENDOR" = 1 ]; then run_vendor "$backing"; fi
    done
    cleanup
done

printf '\nload before: %s\nload after:  %s\n' "$LOAD_BEFORE" "$(uptime)"
for backing in $BACKINGS; do
    b=$RES/$backing
    printf '\n%s-backed loop device, %s MiB, median of %s paired runs\n' "$backing" "$SIZE_MIB" "$RUNS"
    printf '%-36s %10s %10s %16s\n' "method" "write MB/s" "read MB/s" "device read (B)"
    printf '%-36s %10s %10s %16s\n' "dd oflag=direct,fdatasync / iflag" "$(median < "$b.dd_w")" \
        "$(median < "$b.dd_r")" "$(median < "$b.dd_dev")"
    printf '%-36s %10s %10s %16s\n' "verify engine (O_DIRECT, checked)" "$(median < "$b.v_w")" \
        "$(median < "$b.v_r")" "$(median < "$b.v_dev")"
    if [ "$VENDOR" = 1 ]; then
        printf '%-36s %10s %10s %16s\n' "vendor cp+sync / cp back+diff" \
            "$(cut -d' ' -f1 "$b.vendor" | median)" "$(cut -d' ' -f2 "$b.vendor" | median)" \
            "$(median < "$b.vendor_dev")"
    fi
    printf 'ratio verify/dd, median of pairs: write %s, read %s\n' \
        "$(ratios "$b.v_w" "$b.dd_w" | median)" "$(ratios "$b.v_r" "$b.dd_r" | median)"
    printf 'ratio of medians:                  write %s, read %s\n' \
        "$(awk -v a="$(median < "$b.v_w")" -v b="$(median < "$b.dd_w")" 'BEGIN { printf "%.3f", a / b }')" \
        "$(awk -v a="$(median < "$b.v_r")" -v b="$(median < "$b.dd_r")" 'BEGIN { printf "%.3f", a / b }')"
    printf 'raw: dd write [%s]\n     verify write [%s]\n     dd read [%s]\n     verify read [%s]\n' \
        "$(paste -sd' ' "$b.dd_w")" "$(paste -sd' ' "$b.v_w")" \
        "$(paste -sd' ' "$b.dd_r")" "$(paste -sd' ' "$b.v_r")"
done
