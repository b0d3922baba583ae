#!/usr/bin/env bash
# A recorded interactive session replays unattended to the same plan, on two fresh lab VMs:
#  1. scenario "interactive": a person (guest/person.exp) answers the wizard's questions on a
#     pseudo-terminal; the run records its answers (recorded.json) and its plans (plan.txt);
#  2. scenario "attach" with those answers: a fresh VM runs `iser-wizard run --answers
#     recorded.json` unattended, with all of attach's checks;
#  3. the two runs' plans are compared, step by step, after masking what is drawn anew on
#     every host (see normalize below). Any other difference fails, with the diff.
#
# Usage: tests/lab/check-replay.sh --wizard PATH [--out DIR]
#        tests/lab/check-replay.sh --compare DIR
#   --out DIR      results: DIR/interactive, DIR/attach, DIR/plans.diff (default
#                  ${ISER_LAB_OUT:-/tmp/iser-lab}/replay-check)
#   --compare DIR  boot nothing: compare the plans of the two runs kept in DIR
# Exit status: 0 same plans; 1 they differ or a scenario failed; 2 usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wizard=
compare=0
out=${ISER_LAB_OUT:-/tmp/iser-lab}/replay-check
while [ $# -gt 0 ]; do
	case $1 in
	--wizard) wizard=$(readlink -f "$2"); shift 2 ;;
	--out) out=$2; shift 2 ;;
	--compare) compare=1; out=$2; shift 2 ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "check-replay: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$wizard" ] || [ "$compare" -eq 1 ] || {
	echo "check-replay: --wizard PATH is required" >&2
	exit 2
}
mkdir -p "$out"
out=$(readlink -f "$out")

scenario() {
	local name=$1
	shift
	echo "=== $name"
	local rc=0
	"$here/run-scenario.sh" "$name" --wizard "$wizard" --out "$out/$name" "$@" || rc=$?
	[ "$rc" -eq 0 ] || { echo "check-replay: scenario $name failed ($rc): see $out/$name" >&2; exit 1; }
}

if [ "$compare" -eq 0 ]; then
	scenario interactive
	recorded=$out/interactive/lab-results/recorded.json
	[ -s "$recorded" ] || { echo "check-replay: the interactive run recorded no answers" >&2; exit 1; }
	scenario attach --answers "$recorded"
fi

# The plans: every step's header and plan, up to its "done" line. Masked, as drawn anew on
# every host: UUIDs (the file system's, which the wizard picks), the generated initiator
# name's random tail, and SCSI disk names (the kernel numbers them in the order the
# concurrent logins finish).
normalize() {
	awk '
		/^\[[0-9]+\/[0-9]+\] / { inplan = 1; print; next }
		/^  done/ { inplan = 0; next }
		inplan { print }
	' "$1" | sed -E \
		-e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g' \
		-e 's/(iqn\.[0-9]{4}-[0-9]{2}\.[^: ]+:01:)[0-9a-f]+/\1<random>/g' \
		-e 's#/dev/sd[a-z]+#/dev/sd<n>#g'
}
normalize "$out/interactive/lab-results/plan.txt" >"$out/plans.interactive"
normalize "$out/attach/lab-results/plan.txt" >"$out/plans.replay"
steps=$(grep -c '^\[' "$out/plans.interactive" || true)
if ! diff -u "$out/plans.interactive" "$out/plans.replay" >"$out/plans.diff"; then
	cat "$out/plans.diff"
	echo "check-replay: the replay's plan differs from the interactive run's (above)" >&2
	exit 1
fi
# Every step of the flow printed its plan: the count of headers equals the total each header
# names ("[3/9] iscsi"), so a step added to the flow needs no edit here.
total=$(sed -nE '1s#^\[[0-9]+/([0-9]+)\].*#\1#p' "$out/plans.interactive")
[ -n "$total" ] && [ "$steps" -eq "$total" ] || {
	echo "check-replay: $steps step plans found, expected ${total:-a header [1/N] first}" >&2
	exit 1
}
echo "check-replay: the recorded answers replayed to the same plan ($steps steps, $(wc -l <"$out/plans.replay") lines)"
