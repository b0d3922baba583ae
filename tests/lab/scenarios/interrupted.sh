#!/usr/bin/env bash
# lab-needs: wizard
# Interrupted: start the wizard, interrupt it mid-way (by default SIGINT as soon as the first
# iSCSI session appears), check it exits 130, run it again: it must resume and finish, and the
# result must be the same as an uninterrupted attach.
#   LAB_INTERRUPT_SIGNAL  signal to send (default INT; KILL simulates a crash)
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
wwid=$(jq -r .volume.wwid "$LAB_ANSWERS")
[ "$wwid" != auto ] || wwid=$LAB_LUN0_WWID
sig=${LAB_INTERRUPT_SIGNAL:-INT}

phase wizard-run-interrupted
# A non-interactive shell starts background jobs with SIGINT ignored; give the wizard the
# default disposition, as it would have when an operator presses Ctrl-C.
env --default-signal=INT "$LAB_WIZARD" run --answers "$LAB_ANSWERS" >"$LAB_RESULTS/run-1.log" 2>&1 &
pid=$!
some_session() { iscsiadm -m session 2>/dev/null | grep -q '^iser: '; }
if wait_for 300 "a first iSCSI session" some_session; then
	kill -s "$sig" "$pid" 2>/dev/null || true
	echo "sent SIG$sig to the wizard after the first session appeared"
else
	echo "no session appeared; the wizard may have failed early" >&2
fi
rc=0
wait "$pid" || rc=$?
phase_end
cat "$LAB_RESULTS/run-1.log"
case $sig in
INT) [ "$rc" -eq 130 ] || fail "interrupted run exited $rc, expected 130" ;;
KILL) [ "$rc" -eq 137 ] || fail "killed run exited $rc, expected 137 (killed)" ;;
esac

phase wizard-run-resume
rc=0
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" || rc=$?
phase_end
save_wizard_state
[ "$rc" -eq 0 ] || fail "the run after the interruption exited $rc, expected 0"

check_sessions
check_map "$wwid" 4
check_mounted "$mnt" >/dev/null
n=$(fstab_lines "$mnt" | grep -c . || true)
[ "$n" -eq 1 ] || fail "$n fstab lines for $mnt, expected 1"
phase_total interrupted.total
echo "interrupted: PASS"
