#!/usr/bin/env bash
# lab-needs: wizard
# Interactive first-time setup: a person (guest/person.exp, on a pseudo-terminal) answers every
# question the wizard asks and confirms every plan; the run records its answers. Then the same
# checks as attach, and the recorded answers, replayed unattended on this host, find nothing
# to change. Results: recorded.json, plan.txt (the run's standard output: every step's plan),
# asked.tsv (each question and what was typed), transcript.txt (the terminal).
# tests/lab/check-replay.sh replays recorded.json on a fresh host and compares the plans.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=/mnt/lab
wwid=$LAB_LUN0_WWID
rec=$LAB_RESULTS/recorded.json

phase wizard-interactive
rc=0
# shellcheck disable=SC2016 # the inner shell expands its own arguments
LAB_LUN0_WWID=$wwid expect -f /lab/guest/person.exp "$LAB_RESULTS/asked.tsv" \
	bash -c 'set -o pipefail; "$0" run --record-answers "$1" | tee "$2"' \
	"$LAB_WIZARD" "$rec" "$LAB_RESULTS/plan.txt" >"$LAB_RESULTS/transcript.txt" 2>&1 || rc=$?
phase_end
save_wizard_state
echo "questions asked:"
cut -f2- "$LAB_RESULTS/asked.tsv" | sed 's/\t/  ->  /; s/^/  /'
[ "$rc" -eq 0 ] || {
	tail -n 40 "$LAB_RESULTS/transcript.txt"
	fail "interactive iser-wizard run exited $rc, expected 0"
}

# Every step showed its plan and was confirmed before it changed anything.
for step in network iscsi sessions multipath filesystem verify; do
	grep -q "^ASKED	Apply [0-9]* changes* of step $step?" "$LAB_RESULTS/asked.tsv" ||
		fail "the person was not asked to apply the $step step's plan"
done
echo "every step with changes asked before applying them"
# A portal typed on the wrong subnet is refused where it is typed and asked again.
grep -q "^REASKED	Controller B iSER port address on vB's" "$LAB_RESULTS/asked.tsv" ||
	fail "a portal on vA's subnet typed for vB was not refused and asked again at the prompt"
echo "a portal typed on the wrong subnet was refused at the prompt and asked again"

check_sessions
check_map "$wwid" 4
src=$(check_mounted "$mnt")
echo "mounted: $src on $mnt"
fstab_lines "$mnt" | grep -q _netdev || fail "no fstab line with _netdev for $mnt"

# The recorded answers are complete, hold no secret, and replay here as they are: the
# whole file validates, and every step finds nothing left to change.
[ -f "$rec" ] || fail "no recorded answers at $rec"
grep -q 'do not replay as they are' "$LAB_RESULTS/plan.txt" &&
	fail "the run says its recorded answers are incomplete"
jq -e '.ports | length == 2' "$rec" >/dev/null || fail "recorded answers lack the two ports"
jq -e '.target.portals | length == 4' "$rec" >/dev/null || fail "recorded answers lack the 4 portals"
grep -qF -- '- ports[0].address (192.168.130.10/24)' "$LAB_RESULTS/plan.txt" ||
	fail "the run did not name the port addresses as this host's own, to change for the next"
echo "recorded answers:"
sed 's/^/  /' "$rec"
phase wizard-replay-same-host
rc=0
"$LAB_WIZARD" run --answers "$rec" >"$LAB_RESULTS/replay-same-host.txt" 2>&1 || rc=$?
phase_end
[ "$rc" -eq 0 ] || {
	cat "$LAB_RESULTS/replay-same-host.txt"
	fail "replaying the recorded answers on this host exited $rc"
}
# Nothing changes: the verify too relies on the check the interactive run just passed.
changed=$(awk '/^\[[0-9]+\/[0-9]+\] /{s=$2} /^  done \(/{print s}' "$LAB_RESULTS/replay-same-host.txt")
[ -z "$changed" ] || {
	cat "$LAB_RESULTS/replay-same-host.txt"
	fail "replaying the recorded answers on this host changed: ${changed//$'\n'/ }, expected nothing"
}
echo "the recorded answers replay on this host: nothing to change (the verify relies on the check just passed)"
phase_total interactive.total
echo "interactive: PASS"
