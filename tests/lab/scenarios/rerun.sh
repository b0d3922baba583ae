#!/usr/bin/env bash
# lab-needs: wizard
# Rerun: attach, write a file, run the wizard again with the same answers. The second run must
# succeed and change nothing that matters: same file system (UUID), the file still there, still
# 4 sessions (not 8), one fstab line, one map.
# Chained after attach in the same VM ("attach+rerun", one boot), its first run is already a
# rerun; the checks hold either way.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
wwid=$(jq -r .volume.wwid "$LAB_ANSWERS")
[ "$wwid" != auto ] || wwid=$LAB_LUN0_WWID
# The wizard's log (appended by every run) gives each step's wall time: "step NAME: done, N
# changes, in S.SSSs". steps_since LINES FILE writes the steps of the runs logged after the
# log's first LINES lines as "NAME SECONDS" to FILE, for benches/attach.sh.
wizard_log=${LAB_WIZARD_STATE_DIR:-/var/lib/iser-wizard}/log
log_lines() { if [ -f "$wizard_log" ]; then wc -l <"$wizard_log"; else echo 0; fi; }
steps_since() {
	[ -f "$wizard_log" ] || return 0
	tail -n +"$(($1 + 1))" "$wizard_log" |
		sed -n 's/^[^ ]* step \([a-z-]*\): done, [0-9]* changes, in \([0-9.]*\)s$/\1 \2/p' >"$2"
}

phase wizard-run-1
rc=0
from=$(log_lines)
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" || rc=$?
phase_end
steps_since "$from" "$LAB_RESULTS/steps.rerun-1"
[ "$rc" -eq 0 ] || { save_wizard_state; fail "first run exited $rc"; }
src=$(check_mounted "$mnt")
uuid1=$(blkid -s UUID -o value "$src")
echo "written before the rerun" >"$mnt/rerun-marker"
sync
cp /etc/fstab "$LAB_RESULTS/fstab.after-run-1"

phase wizard-run-2
rc=0
from=$(log_lines)
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" || rc=$?
phase_end
steps_since "$from" "$LAB_RESULTS/steps.rerun-2"
save_wizard_state
[ "$rc" -eq 0 ] || fail "second run exited $rc, expected 0"
# Issue 18: the second run changed nothing before the verify, which passed in the first run on
# this same file system: it is not repeated and counts no change.
tail -n +"$((from + 1))" "$wizard_log" | grep -q 'step verify: done, 0 changes' ||
	fail "the rerun's verify wrote again (expected 0 changes after an unchanged rerun)"

check_sessions
check_map "$wwid" 4
[ "$(multipath -ll | grep -c " dm-[0-9]* ")" -eq 2 ] || fail "expected 2 maps (one per LUN)"
src=$(check_mounted "$mnt")
uuid2=$(blkid -s UUID -o value "$src")
[ "$uuid1" = "$uuid2" ] || fail "file system UUID changed on rerun ($uuid1 -> $uuid2): reformatted"
grep -q 'written before the rerun' "$mnt/rerun-marker" || fail "file written between runs is gone"
n=$(fstab_lines "$mnt" | grep -c . || true)
[ "$n" -eq 1 ] || fail "$n fstab lines for $mnt after the rerun, expected 1"
diff -u "$LAB_RESULTS/fstab.after-run-1" /etc/fstab || fail "rerun changed /etc/fstab"
[ "$(findmnt -n "$mnt" | grep -c .)" -eq 1 ] || fail "$mnt is mounted more than once"
phase_total rerun.total
echo "rerun: PASS"
