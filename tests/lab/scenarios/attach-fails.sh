#!/usr/bin/env bash
# lab-needs: wizard
# Attach fails: while the wizard logs in, one portal is killed on the target side (its iSER
# listener removed in LIO's configfs), so the sessions step logs in on three portals and
# fails on the fourth. The failed run must exit 1 naming the step and the login, clean up
# what it made (the three sessions, the node records its discovery made, the LUNs' path
# devices and any map), say so, and leave nothing of the volume behind: no session or node
# record of the target, no map, no sdX of a lab LUN, no fstab line, no mount point. Then the
# portal comes back and the wizard runs again: it resumes at the sessions step and the
# attach completes.
# The portal is killed as soon as discovery has made its node record, before the logins
# (which run concurrently): killed before the run, SendTargets over iSER would not report
# it (LIO lists only the iSER portals) and the step would fail at discovery instead.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
wwid=$(jq -r .volume.wwid "$LAB_ANSWERS")
[ "$wwid" != auto ] || wwid=$LAB_LUN0_WWID
killed=192.168.131.102
iser=/sys/kernel/config/target/iscsi/$LAB_TARGET_IQN/tpgt_1/np/$killed:3260/iser
[ -e "$iser" ] || fail "no iSER attribute of portal $killed in LIO: $iser"
[ ! -e "$mnt" ] || fail "$mnt exists before the run: the scenario needs a fresh host"
cp /etc/fstab "$LAB_RESULTS/fstab.before"

phase wizard-run-fails
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" >"$LAB_RESULTS/run-1.log" 2>&1 &
pid=$!
# Discovery's record of the portal on subnet B's iface (iscsid's node database: a file per
# iface under the portal's directory), polled often: the logins follow within a second or
# two. (Discovery over vA reports it too, on iface-vA, before the vB round that must see it.)
end=$((SECONDS + 300))
until compgen -G "/etc/iscsi/nodes/$LAB_TARGET_IQN/$killed,3260,*/iface-vB" >/dev/null; do
	kill -0 "$pid" 2>/dev/null || break
	[ "$SECONDS" -lt "$end" ] || break
	sleep 0.05
done
echo 0 >"$iser"
echo "portal $killed: iSER listener removed at ${SECONDS}s (iser=$(cat "$iser"); record: $(compgen -G "/etc/iscsi/nodes/$LAB_TARGET_IQN/$killed,3260,*/iface-vB" || echo none))"
rc=0
wait "$pid" || rc=$?
phase_end
cat "$LAB_RESULTS/run-1.log"
[ "$rc" -eq 1 ] || fail "the run with a dead portal exited $rc, expected 1"
grep -q '^iser-wizard: step sessions failed' "$LAB_RESULTS/run-1.log" ||
	fail "the message does not name the failed step (step sessions failed ...)"
grep -q "login to.*$killed" "$LAB_RESULTS/run-1.log" ||
	fail "the message does not name the failed login to $killed"
n=$(grep -c '^cleaned up after the failure: log out of session' "$LAB_RESULTS/run-1.log" || true)
[ "$n" -eq 3 ] || fail "$n sessions logged out by the cleanup, expected the 3 the run made"
! grep '^could not remove' "$LAB_RESULTS/run-1.log" || fail "the cleanup left something behind"

phase check-nothing-left
cap after-fail-session iscsiadm -m session -P 3 || true
cap after-fail-node iscsiadm -m node -P 1 || true
cap after-fail-multipath multipath -ll || true
left=$(iscsiadm -m session 2>/dev/null | grep -F -- " $LAB_TARGET_IQN " || true)
[ -z "$left" ] || fail "sessions to the target are left: $left"
others=$(iscsiadm -m session 2>/dev/null || true)
[ -z "$others" ] || echo "note: sessions not to the target (a killed discovery's): $others"
nodes=$(iscsiadm -m node 2>/dev/null | grep -F -- "$LAB_TARGET_IQN" || true)
[ -z "$nodes" ] || fail "node records of the target are left: $nodes"
maps=$(dmsetup ls --target multipath 2>/dev/null | grep -v '^No devices found' || true)
[ -z "$maps" ] || fail "multipath maps are left: $maps"
for w in /sys/block/sd*/device/wwid; do
	[ -e "$w" ] || continue
	d=${w#/sys/block/}
	d=${d%%/*}
	v=3$(sed 's/^naa\.//' "$w")
	case $v in
	"$LAB_LUN0_WWID" | "$LAB_LUN1_WWID") fail "path device $d of a lab LUN ($v) is left" ;;
	esac
done
[ -z "$(fstab_lines "$mnt")" ] || fail "an fstab line for $mnt is left"
cmp -s /etc/fstab "$LAB_RESULTS/fstab.before" || fail "/etc/fstab changed: $(diff "$LAB_RESULTS/fstab.before" /etc/fstab)"
[ ! -e "$mnt" ] || fail "the mount point $mnt is left"
findmnt -n "$mnt" >/dev/null && fail "$mnt is mounted"
jq -e '.run.cleanup.step == "sessions" and (.run.cleanup.left | length) == 0' \
	/var/lib/iser-wizard/state.json >/dev/null || fail "the state does not record the cleanup"
phase_end

phase restore-portal
echo 1 >"$iser"
echo "portal $killed: iSER listener back (iser=$(cat "$iser"))"
phase_end

phase wizard-run-resume
rc=0
"$LAB_WIZARD" run --answers "$LAB_ANSWERS" >"$LAB_RESULTS/run-2.log" 2>&1 || rc=$?
phase_end
cat "$LAB_RESULTS/run-2.log"
save_wizard_state
[ "$rc" -eq 0 ] || fail "the run after the portal came back exited $rc, expected 0"
grep -q '^Resuming the run' "$LAB_RESULTS/run-2.log" || fail "the second run did not resume"

check_sessions
check_map "$wwid" 4
check_mounted "$mnt" >/dev/null
n=$(fstab_lines "$mnt" | grep -c . || true)
[ "$n" -eq 1 ] || fail "$n fstab lines for $mnt, expected 1"
phase_total attach-fails.total
echo "attach-fails: PASS"
