#!/usr/bin/env bash
# lab-needs: wizard
# Attach: one unattended wizard run on a fresh host, then the same checks as the baseline.
# Answers: answers/default.json (ports vA/vB, the lab target, LUN 0 by WWID, /mnt/lab), or
# the answers an interactive run recorded (tests/lab/check-replay.sh).
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

phase wizard-run
rc=0
from=$(log_lines)
# Its standard output (every step's plan) also goes to plan.txt: check-replay.sh compares it.
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" | tee "$LAB_RESULTS/plan.txt" || rc=$?
phase_end
steps_since "$from" "$LAB_RESULTS/steps.attach"
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

# The node records carry the answers' settings, and iscsid.conf seeds a NEW record with them
# (open-iscsi ignores short key names there without a word).
for node in $(iscsiadm -m node | awk '{print $1}' | cut -d, -f1); do
	rec=$(iscsiadm -m node -T "$LAB_TARGET_IQN" -p "$node" -o show 2>/dev/null | sort -u)
	grep -qx 'node.startup = automatic' <<<"$rec" || fail "node $node: node.startup is not automatic"
	grep -qx 'node.session.timeo.replacement_timeout = 20' <<<"$rec" ||
		fail "node $node: replacement_timeout is not 20"
done
iscsiadm -m node -o new -T iqn.2002-09.com.lab:seed-check -p 192.168.130.250:3260 >/dev/null
rec=$(iscsiadm -m node -T iqn.2002-09.com.lab:seed-check -p 192.168.130.250:3260 -o show)
iscsiadm -m node -T iqn.2002-09.com.lab:seed-check -p 192.168.130.250:3260 -o delete
grep -qx 'node.startup = automatic' <<<"$rec" || fail "a new record does not get node.startup = automatic"
grep -qx 'node.session.timeo.replacement_timeout = 20' <<<"$rec" ||
	fail "a new record does not get replacement_timeout 20 from iscsid.conf"
echo "node records: startup automatic, replacement_timeout 20 (also on a new record)"

# The worksheet carries what the run learned.
ws=$("$LAB_WIZARD" worksheet)
for want in "$LAB_TARGET_IQN" "$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)" \
	192.168.130.101 192.168.130.102 192.168.131.101 192.168.131.102 "$wwid" "$mnt" passed; do
	grep -qF -- "$want" <<<"$ws" || fail "the worksheet lacks $want"
done
echo "worksheet: target IQN, initiator IQN, portals, WWID, mount point and verify result present"

phase wizard-status
rc=0
"$LAB_WIZARD" status --json >"$LAB_RESULTS/status.json" || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "iser-wizard status exited $rc on a healthy attach"
phase_total attach.total
echo "attach: PASS"
