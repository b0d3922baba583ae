#!/usr/bin/env bash
# lab-needs: wizard
# Attach: one unattended wizard run on a fresh host, then the same checks as the baseline.
# Answers: answers/default.json (ports vA/vB, the lab target, LUN 0 by WWID, /mnt/lab).
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
wwid=$(jq -r .volume.wwid "$LAB_ANSWERS")
[ "$wwid" != auto ] || wwid=$LAB_LUN0_WWID

phase wizard-run
rc=0
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" || rc=$?
phase_end
save_wizard_state
[ "$rc" -eq 0 ] || fail "iser-wizard run exited $rc, expected 0"

check_sessions
check_map "$wwid" 4
src=$(check_mounted "$mnt")
echo "mounted: $src on $mnt"
fstab_lines "$mnt" | grep -q _netdev ||
	fail "no fstab line with _netdev for $mnt"
check_rdma_traffic
check_rdma_paths

phase wizard-status
rc=0
"$LAB_WIZARD" status --json >"$LAB_RESULTS/status.json" || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "iser-wizard status exited $rc on a healthy attach"
phase_total attach.total
echo "attach: PASS"
