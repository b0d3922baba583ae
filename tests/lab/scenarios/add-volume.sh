#!/usr/bin/env bash
# lab-needs: wizard
# lab-target-args: --luns 3
# A third volume added later, chained after two-volumes in one boot
# ("two-volumes+add-volume"): LUN 2 is mapped on the target only now (the host's sessions
# logged in without it, as when an admin maps a new volume on the array months later), the
# answers get a third volume, and the wizard runs again. The sessions step must rescan to see
# the new LUN, multipath map it, and the third volume be mounted; the first two must be left
# as they were: same bytes (checksums of files written before), same mounts and file systems,
# same fstab lines, the same 4 sessions.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
cfg=/sys/kernel/config/target
tpg=$cfg/iscsi/$LAB_TARGET_IQN/tpgt_1
work=/var/tmp/lab-volumes
[ -f "$work/sums" ] || fail "no two volumes attached yet: chain it after two-volumes (two-volumes+add-volume)"

lun_wwid() {
	local serial
	serial=$(awk '{print $NF}' "$cfg/core/fileio_$1/lun$1/wwn/vpd_unit_serial")
	echo "36001405${serial:0:25}"
}
map_name() {
	multipath -ll "$1" 2>/dev/null | awk 'NR == 1 {print $1}'
}

w0=$(lun_wwid 0)
w1=$(lun_wwid 1)
w2=$(lun_wwid 2)
echo "the new LUN 2: $w2"
# Map LUN 2 now. The host has not scanned since: it has no disk of it.
mkdir -p "$tpg/lun/lun_2"
ln -s "$cfg/core/fileio_2/lun2" "$tpg/lun/lun_2/lab_lun2"
if compgen -G "/dev/disk/by-id/*$w2*" >/dev/null; then
	echo "note: the kernel saw LUN 2 before the wizard's rescan"
fi
cp /etc/fstab "$work/fstab.before"
mounts_now() {
	local m
	for m in /mnt/db /mnt/logs; do findmnt -rno TARGET,SOURCE,FSTYPE,OPTIONS "$m"; done
}
mounts_now >"$work/findmnt.before"

jq --arg w2 "$w2" '.volumes += [
	{name: "archive", wwid: $w2, partition: true, filesystem: "ext4",
	 mount_point: "/mnt/archive", fstab: true}]' "$work/two.json" >"$work/three.json"
cp "$work/three.json" "$LAB_RESULTS/answers.add-volume.json"

phase wizard-run
rc=0
"$LAB_WIZARD" run --answers "$work/three.json" | tee "$LAB_RESULTS/plan.add-volume.txt" || rc=$?
phase_end
save_wizard_state
[ "$rc" -eq 0 ] || fail "iser-wizard run with a third volume exited $rc, expected 0"

# The new volume: its map, its file system, its mount and fstab line.
check_sessions
for w in "$w0" "$w1" "$w2"; do check_map "$w" 4; done
n=$(multipath -ll | grep -c " dm-[0-9]* " || true)
[ "$n" -eq 3 ] || fail "expected 3 maps, found $n"
src=$(check_mounted /mnt/archive)
lsblk -s -rno NAME "$src" | grep -qxF "$(map_name "$w2")" ||
	fail "/mnt/archive is mounted from $src, not on the map of $w2"
lines=$(fstab_lines /mnt/archive)
[ "$(grep -c . <<<"$lines")" -eq 1 ] || fail "expected one fstab line for /mnt/archive: $lines"
echo "archive: $src, fstab: $lines"

# The first two: the same bytes, mounts, file systems and fstab lines.
sha256sum -c "$work/sums" || fail "a file on the first two volumes changed"
while read -r mnt src uuid; do
	now=$(findmnt -n -o SOURCE "$mnt") || fail "$mnt is no longer mounted"
	[ "$now" = "$src" ] || fail "$mnt is now mounted from $now, was $src"
	[ "$(blkid -s UUID -o value "$now")" = "$uuid" ] || fail "the file system of $mnt changed"
	[ "$(findmnt -n "$mnt" | grep -c .)" -eq 1 ] || fail "$mnt is mounted more than once"
done <"$work/mounts"
mounts_now | diff -u "$work/findmnt.before" - ||
	fail "the mounts of the first two volumes changed"
grep -v ' /mnt/archive ' /etc/fstab | diff -u "$work/fstab.before" - ||
	fail "/etc/fstab changed besides the new volume's line"
# Their plans were empty: no command of this run touched their maps.
for w in "$w0" "$w1"; do
	m=$(map_name "$w")
	if grep -E "(parted|mkfs|wipefs|mount -t)[^#]*/dev/mapper/$m" "$LAB_RESULTS/plan.add-volume.txt"; then
		fail "the run planned a change on $m, a volume already attached"
	fi
done

phase wizard-status
rc=0
"$LAB_WIZARD" status --json >"$LAB_RESULTS/status.add-volume.json" || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "iser-wizard status exited $rc on three healthy volumes"
grep -qF -- "$w2" "$LAB_RESULTS/status.add-volume.json" || fail "status does not check $w2"
phase_total add-volume.total
echo "add-volume: PASS"
