#!/usr/bin/env bash
# lab-needs: wizard
# lab-copy: tests/lab/guest/santricity-double.py
# The array side made real: a SANtricity Web Services double (santricity-double.py, HTTPS,
# self-signed) in front of the guest's LIO target, switched to generate_node_acls=0 so the
# host logs in to nothing until the wizard's array step creates the host (an ACL) and maps
# the volume (a LUN under it). Controller A's address has nothing listening: the wizard must
# fail over to B.
# 1. Refusal: the answers name lab_lun1, which the double has mapped to another host: the
#    run stops with exit 3 and sends no POST (no host, no mapping made).
# 2. Attach: answers/array.json (target.iqn "from-array", no portals, no WWID, the volume by
#    its array name lab_lun0): the run attaches, the double's log shows the calls, LUN 0 is
#    mapped to the host's IQN in configfs, the map is the LUN's WWID, and the worksheet
#    carries the array's values.
# 3. A second run sends no POST; `run --from sessions` (answers without wwid) takes the
#    WWID from the array step's record and makes no array call.
# 4. detach --all --unmap: the dry run reads the array and shows the DELETE without sending
#    it; the detach then removes the volume's mapping (one DELETE), so the LUN link under the
#    host's ACL is gone from configfs.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
tpg=/sys/kernel/config/target/iscsi/$LAB_TARGET_IQN/tpgt_1
api_dir=/run/lab/santricity
api_log=$LAB_RESULTS/array-api.log
export ISER_ARRAY_PASSWORD=lab-array-password

phase array-double-start
python3 /lab/repo/tests/lab/guest/santricity-double.py --port 8443 --dir "$api_dir" \
	--log "$api_log" --premap "lab_lun1:other-host:iqn.2002-09.com.lab:other-host" \
	>"$LAB_RESULTS/santricity-double.out" 2>&1 &
wait_for 60 "the SANtricity double" test -f "$api_dir/ready" ||
	fail "the SANtricity double did not start: $(cat "$LAB_RESULTS/santricity-double.out")"
phase_end
fp=$(cat "$api_dir/fingerprint")
echo "array double: certificate SHA-256 $fp"
[ "$(cat "$tpg/attrib/generate_node_acls")" = 0 ] || fail "the target still accepts any initiator"
acls_before=$(ls "$tpg/acls")
[ "$acls_before" = iqn.2002-09.com.lab:other-host ] || fail "unexpected ACLs before the run: $acls_before"

answers=/tmp/array-answers.json
jq --arg fp "$fp" '.array.tls.fingerprint_sha256 = $fp' "$LAB_ANSWERS" >"$answers"

phase array-refused
rc=0
jq '.volume.name = "lab_lun1"' "$answers" >/tmp/array-refused.json
"$LAB_WIZARD" run --answers /tmp/array-refused.json --state-dir /var/lib/iser-wizard-refused \
	>"$LAB_RESULTS/refused.txt" 2>&1 || rc=$?
phase_end
cat "$LAB_RESULTS/refused.txt"
[ "$rc" -eq 3 ] || fail "a volume mapped to another host: exit $rc, expected 3"
grep -q "mapped to host other-host" "$LAB_RESULTS/refused.txt" ||
	fail "the refusal does not name the other host"
if grep -qv '^GET ' "$api_log"; then
	fail "the refused run changed the array: $(grep -v '^GET ' "$api_log")"
fi
[ "$(ls "$tpg/acls")" = "$acls_before" ] || fail "the refused run changed the target's ACLs"
echo "refused: exit 3, the other host named, no POST, ACLs unchanged"
# The double appends to its open log: keep the refused run's part, then empty it in place.
cp "$api_log" "$api_log.refused"
: >"$api_log"

phase wizard-run
rc=0
"$LAB_WIZARD" run --answers "$answers" | tee "$LAB_RESULTS/plan.txt" || rc=$?
phase_end
save_wizard_state
[ "$rc" -eq 0 ] || fail "iser-wizard run exited $rc, expected 0"
echo "--- REST calls the wizard made (double's log)"
cat "$api_log"
grep -q '^GET /devmgr/utils/about 200' "$api_log" || fail "the run did not probe /devmgr/utils/about"
[ "$(grep -c '^POST /devmgr/v2/storage-systems/1/hosts 201' "$api_log")" -eq 1 ] ||
	fail "expected one POST hosts"
[ "$(grep -c '^POST /devmgr/v2/storage-systems/1/volume-mappings 201' "$api_log")" -eq 1 ] ||
	fail "expected one POST volume-mappings"
grep -q 'array API: GET /devmgr/utils/about -> 200' "$LAB_RESULTS/wizard-state/log" ||
	fail "the wizard's log lacks the API calls"
grep -q 'cannot connect' "$LAB_RESULTS/wizard-state/log" ||
	fail "the wizard's log does not show controller A unreachable"
if grep -rqF "$ISER_ARRAY_PASSWORD" "$LAB_RESULTS/wizard-state" "$LAB_RESULTS/plan.txt"; then
	fail "the array password is in the state directory or the output"
fi
initiator=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)
[ -L "$tpg/acls/$initiator/lun_0/lab_lun0" ] ||
	fail "LUN 0 is not mapped to $initiator in configfs: $(find "$tpg/acls" | head -20)"

check_sessions
check_map "$LAB_LUN0_WWID" 4
src=$(check_mounted "$mnt")
echo "mounted: $src on $mnt"

ws=$("$LAB_WIZARD" worksheet)
for want in lab-array 08.52.00.00-lab "$LAB_TARGET_IQN" "$initiator" lab-host LnxDHALUA \
	"lab_lun0: WWN 60014051AB0000000000000000000000, LUN 0" 192.168.130.101 192.168.130.102 \
	192.168.131.101 192.168.131.102 https://127.0.0.1:8443 "$LAB_LUN0_WWID"; do
	grep -qF -- "$want" <<<"$ws" || fail "the worksheet lacks $want"
done
echo "worksheet: the array's name, firmware, controllers, target IQN, ports, host, host type, volume WWN and LUN"
array_s=$(jq -r '.steps[] | select(.step == "array") | .seconds' /var/lib/iser-wizard/worksheet.json)
echo "array step: ${array_s} s of the attach"
echo "array.step $array_s" >>"$LAB_RESULTS/timings"

phase wizard-run-2
rc=0
"$LAB_WIZARD" run --answers "$answers" >"$LAB_RESULTS/rerun.txt" 2>&1 || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "the second run exited $rc"
[ "$(grep -vc '^GET ' "$api_log")" -eq 2 ] || fail "the second run sent a POST: $(grep -v '^GET ' "$api_log")"
echo "second run: no POST"

phase wizard-from-sessions
calls=$(wc -l <"$api_log")
rc=0
"$LAB_WIZARD" run --answers "$answers" --from sessions >"$LAB_RESULTS/from-sessions.txt" 2>&1 || rc=$?
phase_end
[ "$rc" -eq 0 ] || fail "run --from sessions exited $rc: $(tail -5 "$LAB_RESULTS/from-sessions.txt")"
[ "$(wc -l <"$api_log")" -eq "$calls" ] || fail "run --from sessions called the array"
echo "run --from sessions: the WWID from the state, no array call"

phase detach-unmap
rc=0
"$LAB_WIZARD" detach --all --unmap --dry-run >"$LAB_RESULTS/unmap-dry.txt" 2>&1 || rc=$?
cat "$LAB_RESULTS/unmap-dry.txt"
[ "$rc" -eq 0 ] || fail "detach --unmap --dry-run exited $rc"
grep -q "would unmap volume lab_lun0 (LUN 0) from host lab-host: .DELETE https://" \
	"$LAB_RESULTS/unmap-dry.txt" || fail "the dry run does not show the DELETE"
[ "$(grep -c '^DELETE ' "$api_log")" -eq 0 ] || fail "the dry run sent a DELETE"
rc=0
"$LAB_WIZARD" detach --all --unmap >"$LAB_RESULTS/unmap.txt" 2>&1 || rc=$?
phase_end
cat "$LAB_RESULTS/unmap.txt"
[ "$rc" -eq 0 ] || fail "detach --all --unmap exited $rc"
[ "$(grep -c '^DELETE /devmgr/v2/storage-systems/1/volume-mappings/.* 204' "$api_log")" -eq 1 ] ||
	fail "expected one DELETE volume-mappings: $(grep -v '^GET ' "$api_log")"
[ ! -e "$tpg/acls/$initiator/lun_0" ] || fail "LUN 0 is still mapped to $initiator in configfs"
grep -q "unmapped volume lab_lun0 (LUN 0) from host lab-host" "$LAB_RESULTS/unmap.txt" ||
	fail "detach does not say what it unmapped"
echo "detach --unmap: the dry run sent nothing; one DELETE, the LUN link gone from configfs"
phase_total array.total
echo "array: PASS"
