#!/usr/bin/env bash
# lab-needs: wizard
# lab-target-args: --data-lun
# Data LUN: LUN 0 already carries an ext4 file system holding precious.txt. The wizard must
# refuse to partition or format it (exit 3) and leave the data as it was.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
[ "${LAB_DATA_LUN:-0}" = 1 ] || fail "this scenario needs the --data-lun target variant"
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
wwid=$(jq -r .volume.wwid "$LAB_ANSWERS")
[ "$wwid" != auto ] || wwid=$LAB_LUN0_WWID

# The LUN's bytes, as the target stores them, before and after the wizard.
sync
before=$(sha256sum <"$LAB_LUN0_FILE")
phase wizard-run
rc=0
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" || rc=$?
phase_end
save_wizard_state
[ "$rc" -eq 3 ] || fail "iser-wizard run exited $rc on a LUN that carries data, expected 3"
sync
after=$(sha256sum <"$LAB_LUN0_FILE")
[ "$before" = "$after" ] || fail "LUN 0's bytes changed under the wizard"
echo "LUN 0 unchanged byte for byte (sha256 ${before%% *})"

! findmnt -n "$mnt" >/dev/null || fail "$mnt got mounted"
[ -z "$(fstab_lines "$mnt")" ] || fail "an fstab line for $mnt was written"
dev=/dev/mapper/$wwid
if [ -b "$dev" ]; then
	blkid -p -o export "$dev" >"$LAB_RESULTS/blkid-after.txt" 2>&1 || true
	grep -qx 'TYPE=ext4' "$LAB_RESULTS/blkid-after.txt" || fail "LUN 0 no longer carries its ext4 file system"
	! lsblk -nro TYPE "$dev" | grep -qx part || fail "a partition appeared on LUN 0"
	mkdir -p /mnt/lab-check
	mount -o ro "$dev" /mnt/lab-check
	grep -q 'precious data' /mnt/lab-check/precious.txt || fail "precious.txt is gone or changed"
	umount /mnt/lab-check
else
	# The wizard stopped before multipath: read the data through one path instead.
	echo "no map $dev after the refusal; checking the LUN's backing file on the target side"
	blkid -p -o export /var/lib/lab-target/lun0.img | grep -qx 'TYPE=ext4' || fail "LUN 0 lost its ext4 file system"
fi
phase_total data-lun.total
echo "data-lun: PASS"
