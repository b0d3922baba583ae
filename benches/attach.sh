#!/usr/bin/env bash
# The wizard's attach and rerun against the hand-typed baseline, per phase, from lab results.
#
# Usage: benches/attach.sh LAB_OUT_DIR [LAB_OUT_DIR...]
#   Each directory is searched (any depth) for the lab's `lab-results/` folders:
#   - the baseline's `timings` (a run whose timings hold `baseline.total`): its phases are
#     named as the wizard's steps (network, iscsi, sessions, multipath, filesystem, verify);
#     a phase timed in several pieces (captures taken outside it) is summed;
#   - the wizard's per-step seconds the attach and rerun scenarios write from the wizard's
#     log: `steps.attach` (attach), else `steps.rerun-1` (rerun alone: its first run
#     attaches), and `steps.rerun-2` (a run that changes nothing);
#   - the whole runs' wall time (`wizard-run`, `wizard-run-2` in `timings`).
#   E.g. after `tests/lab/run-scenario.sh baseline --out D/baseline` and
#   `tests/lab/run-scenario.sh attach+rerun --wizard W --out D/attach+rerun`:
#   `benches/attach.sh D`.
#
# Prints one row per phase: baseline, attach, rerun seconds, attach/baseline and
# rerun/attach. The goals of issue 18 are attach/baseline <= 1.00 and rerun/attach <= 0.15 on
# the six phases' totals; they are printed beside the figures, never asserted (a lab VM
# under TCG on a shared machine varies by tens of percent from one run to the next).
set -euo pipefail
export LC_ALL=C

if [ $# -lt 1 ]; then
	echo "usage: $0 LAB_OUT_DIR [LAB_OUT_DIR...]" >&2
	exit 2
fi

baseline='' attach='' rerun='' attach_wall='' rerun_wall='' rerun1=''
while IFS= read -r -d '' res; do
	t=$res/timings
	if [ -f "$t" ] && grep -q '^baseline\.total ' "$t" && [ -z "$baseline" ]; then
		baseline=$t
	fi
	if [ -f "$res/steps.attach" ] && [ -z "$attach" ]; then
		attach=$res/steps.attach
		attach_wall=$(awk '$1 == "wizard-run" { print $2; exit }' "$t" 2>/dev/null || true)
	fi
	if [ -f "$res/steps.rerun-2" ] && [ -z "$rerun" ]; then
		rerun=$res/steps.rerun-2
		rerun_wall=$(awk '$1 == "wizard-run-2" { print $2; exit }' "$t" 2>/dev/null || true)
		if [ -z "$attach" ] && [ -f "$res/steps.rerun-1" ] && ! [ -f "$res/steps.attach" ]; then
			rerun1=$res/steps.rerun-1
		fi
	fi
done < <(find "$@" -type d -name lab-results -print0 | sort -z)
if [ -z "$attach" ] && [ -n "$rerun1" ]; then
	attach=$rerun1
	attach_wall=$(awk '$1 == "wizard-run-1" { print $2; exit }' "$(dirname "$rerun1")/timings")
fi

[ -n "$baseline" ] || echo "attach.sh: no baseline timings (lab-results/timings with baseline.total) under $*" >&2
[ -n "$attach" ] || echo "attach.sh: no wizard attach steps (lab-results/steps.attach or steps.rerun-1) under $*" >&2
[ -n "$rerun" ] || echo "attach.sh: no wizard rerun steps (lab-results/steps.rerun-2) under $*" >&2
if [ -z "$baseline$attach$rerun" ]; then
	exit 1
fi

echo "baseline: ${baseline:-none}"
echo "attach:   ${attach:-none}"
echo "rerun:    ${rerun:-none}"
echo

# One awk reads the three files (any may be /dev/null) and prints the table.
awk -v aw="${attach_wall:-}" -v rw="${rerun_wall:-}" '
	FILENAME == ARGV[1] { base[$1] += $2; next }
	FILENAME == ARGV[2] { att[$1] += $2; seen[$1] = 1; next }
	FILENAME == ARGV[3] { re[$1] += $2; seen[$1] = 1; next }
	function num(v, have) { return have ? sprintf("%8.2f", v) : sprintf("%8s", "-") }
	function ratio(a, b, ok) { return (ok && b > 0) ? sprintf("%12.2f", a / b) : sprintf("%12s", "-") }
	# Callers test "p in x" before reading x[p]: reading an element creates it.
	function row(name, b, hb, a, ha, r, hr) {
		printf "%-18s %s %s %s %s %s\n", name, num(b, hb), num(a, ha), num(r, hr),
			ratio(a, b, hb && ha), ratio(r, a, ha && hr)
	}
	END {
		n = split("network iscsi sessions multipath filesystem verify", phase, " ")
		extra = split("preflight subnet-manager", wiz, " ")
		printf "%-18s %8s %8s %8s %12s %12s\n", "phase (s)", "baseline", "attach", "rerun",
			"attach/base", "rerun/attach"
		for (i = 1; i <= extra; i++) {
			p = wiz[i]
			xa = p in att; xr = p in re
			row(p, 0, 0, att[p], xa, re[p], xr)
		}
		for (i = 1; i <= n; i++) {
			p = phase[i]
			xb = p in base; xa = p in att; xr = p in re
			row(p, base[p], xb, att[p], xa, re[p], xr)
			if (xb) { tb += base[p]; hb = 1 }
			if (xa) { ta += att[p]; ha = 1 }
			if (xr) { tr += re[p]; hr = 1 }
			known[p] = 1
		}
		for (i = 1; i <= extra; i++) known[wiz[i]] = 1
		for (p in seen) if (!(p in known)) {
			xa = p in att; xr = p in re
			row(p, 0, 0, att[p], xa, re[p], xr)
		}
		row("six phases", tb, hb, ta, ha, tr, hr)
		sa = 0; sr = 0
		for (p in att) sa += att[p]
		for (p in re) sr += re[p]
		row("all steps", 0, 0, sa, ha, sr, hr)
		row("wizard run (wall)", 0, 0, aw + 0, aw != "", rw + 0, rw != "")
		print ""
		if (hb && ha && tb > 0) printf "goal attach/baseline <= 1.00 (six phases): %.2f\n", ta / tb
		if (ha && hr && ta > 0) printf "goal rerun/attach   <= 0.15 (six phases): %.2f\n", tr / ta
		if (aw != "" && rw != "" && aw > 0) printf "     rerun/attach, whole runs: %.2f\n", rw / aw
	}
' "${baseline:-/dev/null}" "${attach:-/dev/null}" "${rerun:-/dev/null}"
