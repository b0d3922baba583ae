#!/usr/bin/env bash
# lab-needs: wizard
# lab-target-args: --luns 3
# Two volumes in one run: LUN 0 (partitioned, /mnt/db) and LUN 1 (the whole map, /mnt/logs),
# each given by the WWID read from the target's configfs (with two volumes only one may be
# "auto", and with three LUNs "auto" would be ambiguous). Each must get its own map with 4
# active paths, its own file system, mount and fstab line; status and the worksheet name both.
# LUN 2 is taken out of the target's LUN list before the login, so that add-volume (chained
# after this one, "two-volumes+add-volume") can map it later, as an admin maps a new volume.
# Leaves for add-volume: /var/tmp/lab-volumes/ (the answers, a file on each volume and its
# checksum, what each mount and fstab line was).
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
[ "${LAB_LUNS:-2}" -ge 3 ] || fail "the target has ${LAB_LUNS:-2} LUNs: run with --luns 3"
cfg=/sys/kernel/config/target
tpg=$cfg/iscsi/$LAB_TARGET_IQN/tpgt_1
work=/var/tmp/lab-volumes
rm -rf "$work"
mkdir -p "$work"

# The WWID multipath gives LUN $1: LIO's NAA 6 designator from the backstore's serial.
lun_wwid() {
	local serial
	serial=$(awk '{print $NF}' "$cfg/core/fileio_$1/lun$1/wwn/vpd_unit_serial")
	echo "36001405${serial:0:25}"
}
# The name multipath gave the map of WWID $1.
map_name() {
	multipath -ll "$1" 2>/dev/null | awk 'NR == 1 {print $1}'
}

w0=$(lun_wwid 0)
w1=$(lun_wwid 1)
[ "$w0" = "$LAB_LUN0_WWID" ] || fail "configfs says LUN 0 is $w0, target.env $LAB_LUN0_WWID"
echo "LUN 0: $w0, LUN 1: $w1"
if [ -e "$tpg/lun/lun_2" ]; then
	rm "$tpg/lun/lun_2/lab_lun2"
	rmdir "$tpg/lun/lun_2"
fi

jq --arg w0 "$w0" --arg w1 "$w1" 'del(.volume) | .volumes = [
	{name: "db", wwid: $w0, partition: true, filesystem: "ext4", mount_point: "/mnt/db",
	 fstab: true},
	{name: "logs", wwid: $w1, partition: false, filesystem: "ext4", mount_point: "/mnt/logs",
	 fstab: true}]' "$LAB_ANSWERS" >"$work/two.json"
cp "$work/two.json" "$LAB_RESULTS/answers.two-volumes.json"

phase wizard-run
rc=0
"$LAB_WIZARD" run --answers "$work/two.json" | tee "$LAB_RESULTS/plan.two-volumes.txt" || rc=$?
phase_end
save_wizard_state
[ "$rc" -eq 0 ] || fail "iser-wizard run exited $rc, expected 0"

check_sessions
check_map "$w0" 4
check_map "$w1" 4
n=$(multipath -ll | grep -c " dm-[0-9]* " || true)
[ "$n" -eq 2 ] || fail "expected 2 maps (LUN 2 is not mapped yet), found $n"
for v in "db $w0" "logs $w1"; do
	read -r name wwid <<<"$v"
	mnt=/mnt/$name
	src=$(check_mounted "$mnt")
	map=$(map_name "$wwid")
	[ -n "$map" ] || fail "no map of $wwid"
	# The file system lies on this volume's own map (or its partition).
	lsblk -s -rno NAME "$src" | grep -qxF "$map" || fail "$mnt is mounted from $src, not on map $map"
	[ "$(findmnt -n "$mnt" | grep -c .)" -eq 1 ] || fail "$mnt is mounted more than once"
	lines=$(fstab_lines "$mnt")
	[ "$(grep -c . <<<"$lines")" -eq 1 ] || fail "expected one fstab line for $mnt: $lines"
	grep -q _netdev <<<"$lines" || fail "the fstab line for $mnt lacks _netdev: $lines"
	uuid=$(blkid -s UUID -o value "$src")
	grep -q "^UUID=$uuid " <<<"$lines" || fail "the fstab line for $mnt does not name $uuid"
	echo "$name: $src (UUID $uuid) on map $map, fstab: $lines"
	echo "$mnt $src $uuid" >>"$work/mounts"
	echo "$lines" >>"$work/fstab-lines"
done
[ "$(lsblk -rno NAME "/dev/mapper/$(map_name "$w0")" | grep -c .)" -ge 2 ] ||
	fail "the db volume (partition true) has no partition"

# Status checks both volumes; the worksheet lists both.
phase wizard-status
rc=0
"$LAB_WIZARD" status --json >"$LAB_RESULTS/status.two-volumes.json" || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "iser-wizard status exited $rc on two healthy volumes"
for w in "$w0" "$w1" /mnt/db /mnt/logs; do
	grep -qF -- "$w" "$LAB_RESULTS/status.two-volumes.json" || fail "status does not check $w"
done
ws=$("$LAB_WIZARD" worksheet)
for want in "$w0" "$w1" /mnt/db /mnt/logs "| Name | db |" "| Name | logs |"; do
	grep -qF -- "$want" <<<"$ws" || fail "the worksheet lacks $want"
done
[ "$(grep -c '^### Volume' <<<"$ws")" -eq 2 ] || fail "the worksheet has not two Volume sections"

# Data for add-volume to find unchanged.
for mnt in /mnt/db /mnt/logs; do
	head -c 8M /dev/urandom >"$mnt/payload"
done
sync
sha256sum /mnt/db/payload /mnt/logs/payload >"$work/sums"
phase_total two-volumes.total
echo "two-volumes: PASS"
