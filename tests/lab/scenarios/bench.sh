#!/usr/bin/env bash
# lab-needs: wizard
# Bench and tune on the volume attach just attached (chain "attach+bench", one boot).
# bench: `bench --runs 3 --runtime 5` exits 0 with every workload's values (kept, one a line,
# plain ministat reads them), its percentage of the link and its per-path lines; the test
# file is gone afterwards. Refusals: an unmounted volume (exit 3). tune with two knobs leaves
# every knob as it found it unless kept, and prints its table.
# shellcheck source=../guest/lib.sh
. /lab/guest/lib.sh
set -euo pipefail
need_wizard
mnt=$(jq -r .volume.mount_point "$LAB_ANSWERS")
command -v fio >/dev/null || fail "fio is not in the lab image"
src=$(check_mounted "$mnt")
echo "bench on $src ($mnt)"

phase bench
rc=0
"$LAB_WIZARD" bench --runs 3 --runtime 5 --ramp 1 --label lab1 >"$LAB_RESULTS/bench.txt" \
	2>"$LAB_RESULTS/bench.err" || rc=$?
phase_end
cat "$LAB_RESULTS/bench.txt" "$LAB_RESULTS/bench.err"
save_wizard_state
[ "$rc" -eq 0 ] || fail "bench exited $rc, expected 0"
kept=/var/lib/iser-wizard/bench/lab1
for w in rand4k-read rand4k-write seq1m-read seq1m-write; do
	grep -q "^$w (" "$LAB_RESULTS/bench.txt" || fail "no section for $w"
	[ "$(grep -c . "$kept/$w.txt")" -eq 3 ] || fail "$kept/$w.txt does not hold 3 values"
	[ -s "$kept/$w-3.json" ] || fail "no fio JSON for $w run 3"
	# Plain ministat reads the kept values.
	ministat_out=$("$LAB_WIZARD" stats "$kept/$w.txt" "$kept/$w.txt") ||
		fail "stats cannot read $kept/$w.txt"
	echo "$ministat_out" | grep -q "No difference proven" || fail "a set differs from itself?"
done
[ "$(grep -c '^x   3 ' "$LAB_RESULTS/bench.txt")" -eq 4 ] || fail "expected 4 Vitals lines of 3 runs"
[ "$(grep -c '% of the link' "$LAB_RESULTS/bench.txt")" -eq 4 ] ||
	fail "expected a percentage of the link for each workload"
[ "$(grep -c 'path group 1' "$LAB_RESULTS/bench.txt")" -eq 4 ] ||
	fail "expected per-path lines for each workload"
# Each workload's four paths (2 ports x 2 portals) have a line, and the map its total.
[ "$(grep -cE '^    sd[a-z]+ ' "$LAB_RESULTS/bench.txt")" -eq 16 ] || fail "expected 4 path lines per workload"
[ "$(grep -c '^  map dm-' "$LAB_RESULTS/bench.txt")" -eq 4 ] || fail "expected the map's total per workload"
ls -a "$mnt" | grep -q iser-wizard-bench && fail "the test file is left in $mnt"
"$LAB_WIZARD" bench --json --runs 3 --runtime 2 --ramp 1 --label lab2 >"$LAB_RESULTS/bench2.json" ||
	fail "second bench exited non-zero"
jq -e '.workloads | length == 4' "$LAB_RESULTS/bench2.json" >/dev/null || fail "bench --json lacks workloads"
"$LAB_WIZARD" bench --compare lab1 lab2 >"$LAB_RESULTS/compare.txt" || fail "bench --compare failed"
[ "$(grep -cE 'Difference at 95.0% confidence|No difference proven at 95.0% confidence' "$LAB_RESULTS/compare.txt")" -eq 4 ] ||
	fail "bench --compare: expected a verdict per workload"

phase bench-refusals
umount "$mnt"
rc=0
"$LAB_WIZARD" bench --runs 3 --runtime 1 --label refused 2>"$LAB_RESULTS/bench-unmounted.err" || rc=$?
mount "$mnt"
[ "$rc" -eq 3 ] || fail "bench on an unmounted volume exited $rc, expected 3"
[ ! -e /var/lib/iser-wizard/bench/refused ] || fail "a refused bench kept a directory"
phase_end
phase_total bench.total
echo "bench: PASS"
