#!/usr/bin/env bash
# lab-needs: wizard
# Replay: on a fresh host, one unattended run with the answers an interactive run recorded
# (run-scenario.sh --answers .../interactive/lab-results/recorded.json). Its standard output
# (every step's plan) goes to plan.txt for tests/lab/check-replay.sh to compare with the
# interactive run's.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
wwid=$(jq -r .volume.wwid "$LAB_ANSWERS")
[ "$wwid" != auto ] || wwid=$LAB_LUN0_WWID

phase wizard-run
rc=0
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" >"$LAB_RESULTS/plan.txt" || rc=$?
phase_end
save_wizard_state
cat "$LAB_RESULTS/plan.txt"
[ "$rc" -eq 0 ] || fail "iser-wizard run --answers (recorded) exited $rc, expected 0"
check_sessions
check_map "$wwid" 4
src=$(check_mounted "$mnt")
echo "mounted: $src on $mnt"
phase_total replay.total
echo "replay: PASS"
