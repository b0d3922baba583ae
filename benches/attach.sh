#!/usr/bin/env bash
# The wizard's attach and rerun against the hand-typed baseline, per phase, from lab results.
#
# Usage: benches/attach.sh LAB_OUT_DIR [LAB_OUT_DIR...]
#   Each directory is searched (any depth) for the lab's `lab-results/` folders, and EVERY
#   run found counts (several runs of each, e.g. baseline and attach+rerun alternated on the
#   same machine, compare the same conditions; one slow boot does not decide the figure):
#   - a baseline's `timings` (a run whose timings hold `baseline.total`): its phases are
#     named as the wizard's steps (network, iscsi, sessions, multipath, filesystem, verify);
#     a phase timed in several pieces (captures taken outside it) is summed;
#   - the wizard's per-step seconds the attach and rerun scenarios write from the wizard's
#     log: `steps.attach` (attach), else `steps.rerun-1` (rerun alone: its first run
#     attaches), and `steps.rerun-2` (a run that changes nothing);
#   - the whole runs' wall time (`wizard-run`, `wizard-run-1`, `wizard-run-2` in `timings`).
#   E.g. after `tests/lab/run-scenario.sh baseline --out D/baseline` and
#   `tests/lab/run-scenario.sh attach+rerun --wizard W --out D/attach+rerun`:
#   `benches/attach.sh D`.
#
# Prints how many runs of each kind were found, then one row per phase: the MEDIAN seconds
# over the runs of baseline, attach and rerun, attach/baseline and rerun/attach. The totals
# are the medians of each run's own total. The goals of issue 18 are attach/baseline <= 1.00
# and rerun/attach <= 0.15 on the six phases' totals; they are printed beside the figures,
# never asserted (a lab VM under TCG on a shared machine varies by tens of percent from one
# run to the next, and by several times when other VMs or builds load the machine).
set -euo pipefail
export LC_ALL=C

if [ $# -lt 1 ]; then
	echo "usage: $0 LAB_OUT_DIR [LAB_OUT_DIR...]" >&2
	exit 2
fi

# One line per figure: KIND RUN NAME SECONDS (KIND: base, att, re; NAME "wall" for a whole
# run's wall time).
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
nb=0 na=0 nr=0
wall() { awk -v k="$2" '$1 == k { print $2; exit }' "$1" 2>/dev/null || true; }
while IFS= read -r -d '' res; do
	t=$res/timings
	if [ -f "$t" ] && grep -q '^baseline\.total ' "$t"; then
		nb=$((nb + 1))
		echo "baseline: $t"
		awk -v r="$res" '{ print "base", r, $1, $2 }' "$t" >>"$rows"
	fi
	att='' aw=''
	if [ -f "$res/steps.attach" ]; then
		att=$res/steps.attach aw=$(wall "$t" wizard-run)
	elif [ -f "$res/steps.rerun-1" ] && [ -f "$res/steps.rerun-2" ]; then
		att=$res/steps.rerun-1 aw=$(wall "$t" wizard-run-1)
	fi
	if [ -n "$att" ]; then
		na=$((na + 1))
		echo "attach:   $att"
		awk -v r="$res" '{ print "att", r, $1, $2 }' "$att" >>"$rows"
		[ -z "$aw" ] || echo "att $res wall $aw" >>"$rows"
	fi
	if [ -f "$res/steps.rerun-2" ]; then
		nr=$((nr + 1))
		echo "rerun:    $res/steps.rerun-2"
		awk -v r="$res" '{ print "re", r, $1, $2 }' "$res/steps.rerun-2" >>"$rows"
		rw=$(wall "$t" wizard-run-2)
		[ -z "$rw" ] || echo "re $res wall $rw" >>"$rows"
	fi
done < <(find "$@" -type d -name lab-results -print0 | sort -z)

[ "$nb" -gt 0 ] || echo "attach.sh: no baseline timings (lab-results/timings with baseline.total) under $*" >&2
[ "$na" -gt 0 ] || echo "attach.sh: no wizard attach steps (lab-results/steps.attach or steps.rerun-1) under $*" >&2
[ "$nr" -gt 0 ] || echo "attach.sh: no wizard rerun steps (lab-results/steps.rerun-2) under $*" >&2
if [ $((nb + na + nr)) -eq 0 ]; then
	exit 1
fi
echo "runs: baseline $nb, attach $na, rerun $nr (figures are medians over the runs)"
echo

awk '
	# v[kind, name] holds the values of that phase, one per run, separated by spaces.
	function add(k, name, x) { v[k, name] = ((k, name) in v) ? v[k, name] " " x : x }
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) {
			t = a[i] + 0
			for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
			a[j + 1] = t
		}
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function num(k, name) {
		return ((k, name) in v) ? sprintf("%8.2f", median(v[k, name])) : sprintf("%8s", "-")
	}
	function ratio(a, b,   x, y) {
		if (!((a) in v) || !((b) in v)) return sprintf("%12s", "-")
		x = median(v[a]); y = median(v[b])
		return y > 0 ? sprintf("%12.2f", x / y) : sprintf("%12s", "-")
	}
	function row(name) {
		printf "%-18s %s %s %s %s %s\n", name, num("base", name), num("att", name),
			num("re", name), ratio("att" SUBSEP name, "base" SUBSEP name),
			ratio("re" SUBSEP name, "att" SUBSEP name)
	}
	{
		k = $1; r = $2; name = $3; x = $4 + 0
		# A phase timed in pieces adds up within its run.
		sum[k, r, name] += x
		if (!((k, r, name) in seen)) { seen[k, r, name] = 1; order[++n] = k SUBSEP r SUBSEP name }
		if (name != "wall") { known[name] = 1 }
	}
	END {
		np = split("network iscsi sessions multipath filesystem verify", phase, " ")
		for (i = 1; i <= np; i++) six[phase[i]] = 1
		for (i = 1; i <= n; i++) {
			split(order[i], f, SUBSEP)
			k = f[1]; r = f[2]; name = f[3]
			x = sum[k, r, name]
			add(k, name, x)
			if (name in six) { tot6[k, r] += x; has6[k, r] = 1 }
			if (k != "base" && name != "wall") { tot[k, r] += x; hasall[k, r] = 1 }
		}
		for (kr in has6) { split(kr, f, SUBSEP); add(f[1], "six phases", tot6[kr]) }
		for (kr in hasall) { split(kr, f, SUBSEP); add(f[1], "all steps", tot[kr]) }
		printf "%-18s %8s %8s %8s %12s %12s\n", "phase (s)", "baseline", "attach", "rerun",
			"attach/base", "rerun/attach"
		extra = split("preflight subnet-manager", wiz, " ")
		for (i = 1; i <= extra; i++) { row(wiz[i]); done[wiz[i]] = 1 }
		for (i = 1; i <= np; i++) { row(phase[i]); done[phase[i]] = 1 }
		for (p in known) if (!(p in done) && ((("att", p) in v) || (("re", p) in v))) row(p)
		row("six phases")
		row("all steps")
		row("wall")
		print ""
		if ((("att", "six phases") in v) && (("base", "six phases") in v))
			printf "goal attach/baseline <= 1.00 (six phases): %s\n", ratio("att" SUBSEP "six phases", "base" SUBSEP "six phases")
		if ((("re", "six phases") in v) && (("att", "six phases") in v))
			printf "goal rerun/attach   <= 0.15 (six phases): %s\n", ratio("re" SUBSEP "six phases", "att" SUBSEP "six phases")
		if ((("re", "wall") in v) && (("att", "wall") in v))
			printf "     rerun/attach, whole runs (wall):    %s\n", ratio("re" SUBSEP "wall", "att" SUBSEP "wall")
	}
' "$rows"
