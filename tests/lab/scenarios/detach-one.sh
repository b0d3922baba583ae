#!/usr/bin/env bash
# lab-needs: wizard
# One volume detached while another is in use (issue 14). Needs the answers' `volumes` list
# (answers/detach-one.json: LUN 0 on /mnt/lab, LUN 1 on /mnt/lab2) and so a wizard that knows
# it; with one that does not, the scenario is skipped and says so.
# - Both attached in one run; a process keeps a file open on the second.
# - `detach --mount-point /mnt/lab`: nothing of LUN 0 left (no map, no sdX of its LUN, no
#   fstab line, not mounted); LUN 1 untouched: still mounted, its file readable, its map
#   with 4 active paths, its fstab line, and the 4 sessions (they carry LUN 1) kept.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
"$LAB_WIZARD" answers --explain volumes >/dev/null 2>&1 ||
	skip "this wizard has no volumes list (the volumes helper's work): run after the merge"
[ "$(jq '.volumes | length' "$LAB_ANSWERS")" -ge 2 ] || skip "the answers list fewer than 2 volumes"
mnt1=$(jq -r '.volumes[0].mount_point' "$LAB_ANSWERS")
mnt2=$(jq -r '.volumes[1].mount_point' "$LAB_ANSWERS")
wwid1=$(jq -r '.volumes[0].wwid' "$LAB_ANSWERS")
wwid2=$(jq -r '.volumes[1].wwid' "$LAB_ANSWERS")

# After detach.sh in the same boot LUN 1 is unmapped: map it back. (Not after undo.sh: LUN 0
# then still carries detach.sh's filesystem, and the wizard, whose state no longer knows it,
# rightly refuses to format it: lab run of 2026-12-02, "detach+undo+detach-one".)
tpg=/sys/kernel/config/target/iscsi/$LAB_TARGET_IQN/tpgt_1
if [ ! -e "$tpg/lun/lun_1" ]; then
	mkdir "$tpg/lun/lun_1"
	ln -s /sys/kernel/config/target/core/fileio_1/lun1 "$tpg/lun/lun_1/lab_lun1"
	echo "LUN 1 mapped again (an earlier scenario of this boot unmapped it)"
fi

disks_of() {
	local d w
	for d in /sys/block/sd*; do
		[ -e "$d/device/wwid" ] || continue
		w=$(cat "$d/device/wwid")
		[ "3${w#naa.}" = "$1" ] && basename "$d"
	done
	return 0
}

phase wizard-attach-two
rc=0
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" >"$LAB_RESULTS/attach.log" 2>&1 || rc=$?
phase_end
[ "$rc" -eq 0 ] || { tail -30 "$LAB_RESULTS/attach.log"; save_wizard_state; fail "attach exited $rc"; }
check_sessions
check_map "$wwid1" 4
check_map "$wwid2" 4
check_mounted "$mnt1" >/dev/null
check_mounted "$mnt2" >/dev/null
echo "in use while the other goes" >"$mnt2/in-use.txt"
(
	exec 9>>"$mnt2/in-use.txt"
	exec sleep 600
) &
holder=$!
fstab2=$(fstab_lines "$mnt2")

phase detach-one
rc=0
"$LAB_WIZARD" detach --mount-point "$mnt1" >"$LAB_RESULTS/detach.out" 2>&1 || rc=$?
phase_end
save_wizard_state
cat "$LAB_RESULTS/detach.out"
[ "$rc" -eq 0 ] || fail "detach of $mnt1 exited $rc"
! findmnt -n "$mnt1" >/dev/null || fail "$mnt1 is still mounted"
[ -z "$(fstab_lines "$mnt1")" ] || fail "the fstab line of $mnt1 is still there"
if multipath -ll 2>/dev/null | grep -q "$wwid1"; then fail "the map of $wwid1 is still there"; fi
[ -z "$(disks_of "$wwid1")" ] || fail "path devices of $wwid1 are still there: $(disks_of "$wwid1")"
check_sessions
check_map "$wwid2" 4
check_mounted "$mnt2" >/dev/null
grep -q "in use while the other goes" "$mnt2/in-use.txt" || fail "the other volume's file is unreadable"
[ "$(fstab_lines "$mnt2")" = "$fstab2" ] || fail "the fstab line of $mnt2 changed"
kill "$holder"
wait "$holder" 2>/dev/null || true
phase_total detach-one.total
echo "detach-one: PASS"
