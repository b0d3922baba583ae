#!/usr/bin/env bash
# lab-needs: wizard
# Bench and tune on the volume attach just attached (chain "attach+bench", one boot).
# bench: `bench --runs 3 --runtime 5` exits 0 with every workload's values (kept, one a line,
# plain ministat reads them), its percentage of the link and its per-path lines; the test
# file is gone afterwards. Refusals: an unmounted volume (exit 3). tune with two knobs (the
# path selector and nr_requests) leaves every knob as it found it unless kept (its restore
# script puts a kept one back), the live map's selector included, no trial drop-in left, and
# prints its table; a tune stopped by SIGTERM during a selector trial exits 130 with every
# knob, the live map's selector and the drop-in directory as they were found.
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
left_test_file() {
	compgen -G "$mnt/.iser-wizard-bench.*" >/dev/null
}
left_test_file && fail "the test file is left in $mnt"
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

phase tune
# Two knobs (the selector and nr_requests), one workload, short runs: the loop, its table and
# the restore, in about 2 min.
# The live map's selector (every path group's policy), as multipath -ll shows it.
live_selector() {
	multipath -ll "$wwid" | sed -n "s/.*policy='\([^']*\)'.*/\1/p" | sort -u | paste -sd,
}
trial_dropin=/etc/multipath/conf.d/99-iser-wizard-tune-trial.conf
knob_files() {
	local d
	for d in $devs; do
		printf '%s nr_requests=%s read_ahead_kb=%s max_sectors_kb=%s\n' "$d" \
			"$(cat "/sys/block/$d/queue/nr_requests")" "$(cat "/sys/block/$d/queue/read_ahead_kb")" \
			"$(cat "/sys/block/$d/queue/max_sectors_kb")"
	done
	echo "path_selector=$(live_selector)"
	{ ls /etc/multipath/conf.d/ 2>/dev/null || true; } | sed 's/^/conf.d: /'
}
dm=$(basename "$(readlink -f "$src")")
# The map under the filesystem (a partition's dm sits on it): its slaves that are sd devices.
mapdev=$dm
if ! compgen -G "/sys/block/$mapdev/slaves/sd*" >/dev/null; then
	for s in /sys/block/"$dm"/slaves/*; do mapdev=${s##*/}; done
fi
devs=$mapdev
for s in /sys/block/"$mapdev"/slaves/*; do devs="$devs ${s##*/}"; done
wwid=$(sed -n 's/^mpath-//p' "/sys/block/$mapdev/dm/uuid")
[ -n "$wwid" ] || fail "no multipath WWID for $mapdev"
echo "tune devices: $devs (map $wwid, selector $(live_selector))"
sel_before=$(live_selector)
knob_files >"$LAB_RESULTS/knobs.before"
cat "$LAB_RESULTS/knobs.before"
"$LAB_WIZARD" tune --dry-run --knobs path_selector,nr_requests --workloads rand4k-read \
	--runs 3 --runtime 2 --ramp 1 --warmup 1 >"$LAB_RESULTS/tune-dry-run.txt" || fail "tune --dry-run failed"
cat "$LAB_RESULTS/tune-dry-run.txt"
grep -q '^  nr_requests ' "$LAB_RESULTS/tune-dry-run.txt" || fail "tune --dry-run lists no nr_requests"
grep -q "^  path_selector   now $sel_before " "$LAB_RESULTS/tune-dry-run.txt" ||
	fail "tune --dry-run does not list the live map's selector"
grep -q "drop-in $trial_dropin" "$LAB_RESULTS/tune-dry-run.txt" || fail "tune --dry-run names no drop-in"
grep -q 'at most ' "$LAB_RESULTS/tune-dry-run.txt" || fail "tune --dry-run gives no time"
knob_files | diff -u "$LAB_RESULTS/knobs.before" - || fail "tune --dry-run changed a knob"
rc=0
"$LAB_WIZARD" tune --knobs path_selector,nr_requests --workloads rand4k-read \
	--runs 3 --runtime 2 --ramp 1 --warmup 1 >"$LAB_RESULTS/tune.txt" 2>"$LAB_RESULTS/tune.err" || rc=$?
cat "$LAB_RESULTS/tune.txt" "$LAB_RESULTS/tune.err"
[ "$rc" -eq 0 ] || fail "tune exited $rc"
grep -q '^knob (old -> new) *| workload' "$LAB_RESULTS/tune.txt" || fail "tune printed no table"
# Each knob has its rows, or says why the kernel would not take a value (then it is as found).
for k in nr_requests path_selector; do
	grep -qE "^$k \([a-z0-9 -]+ -> [a-z0-9 -]+\)" "$LAB_RESULTS/tune.txt" ||
		grep -q "^not tried: $k " "$LAB_RESULTS/tune.txt" || fail "no $k row and no reason"
done
# Tried from the selector the live map had before (a kept one is on the map now).
grep -qE "^path_selector \($sel_before -> " "$LAB_RESULTS/tune.txt" ||
	grep -q "^not tried: path_selector" "$LAB_RESULTS/tune.txt" || fail "the selector was not tried from the live one"
[ ! -e "$trial_dropin" ] || fail "tune left its trial drop-in $trial_dropin"
grep -q 'expected by chance' "$LAB_RESULTS/tune.txt" || fail "no word on chance differences"
knob_files >"$LAB_RESULTS/knobs.after"
kept=$(sed -n 's/^kept: //p' "$LAB_RESULTS/tune.txt")
echo "kept: $kept"
if [ "$kept" = "nothing (every knob is as it was found)" ]; then
	diff -u "$LAB_RESULTS/knobs.before" "$LAB_RESULTS/knobs.after" || fail "tune kept nothing but changed a knob"
else
	# Every knob not kept is as it was found; a kept one has its value on every device (a
	# kept selector on the live map).
	sel=$(echo "$kept" | tr ',' '\n' | sed -n 's/^ *path_selector=//p')
	if [ -z "$sel" ]; then
		diff <(grep '^path_selector=' "$LAB_RESULTS/knobs.before") <(grep '^path_selector=' "$LAB_RESULTS/knobs.after") ||
			fail "the selector was not kept but changed"
	else
		[ "$(live_selector)" = "$sel" ] || fail "path_selector=$sel kept but the map shows $(live_selector)"
	fi
	diff <(grep -E '^(conf.d|[a-z0-9-]+ .*read_ahead_kb)' "$LAB_RESULTS/knobs.before" | sed 's/ nr_requests=[0-9]*//') \
		<(grep -E '^(conf.d|[a-z0-9-]+ .*read_ahead_kb)' "$LAB_RESULTS/knobs.after" | sed 's/ nr_requests=[0-9]*//') ||
		fail "a knob tune did not try, or the drop-in directory, changed"
	k=nr_requests
	v=$(echo "$kept" | tr ',' '\n' | sed -n "s/^ *$k=//p")
	if [ -z "$v" ]; then
		diff <(grep -o "$k=[0-9]*" "$LAB_RESULTS/knobs.before") <(grep -o "$k=[0-9]*" "$LAB_RESULTS/knobs.after") ||
			fail "$k was not kept but changed"
	else
		[ "$(grep -c "$k=$v\b" "$LAB_RESULTS/knobs.after")" -eq "$(echo "$devs" | wc -w)" ] ||
			fail "$k=$v kept but not on every device"
	fi
	sh /var/lib/iser-wizard/tune/*/restore.sh
	knob_files | diff -u "$LAB_RESULTS/knobs.before" - || fail "the restore script did not put the knobs back"
fi
left_test_file && fail "tune left its test file in $mnt"

phase tune-interrupted
"$LAB_WIZARD" tune --knobs path_selector --workloads seq1m-write --runs 3 --runtime 5 --ramp 1 \
	--warmup 1 >"$LAB_RESULTS/tune-int.txt" 2>&1 &
pid=$!
# SIGTERM (a background job of a script ignores SIGINT) during the first selector trial: after
# the layout and the reference bench (1 s of warm-up, 3 runs of 6 s), the drop-in is in place.
for _ in $(seq 60); do
	[ -e "$trial_dropin" ] && break
	sleep 1
done
[ -e "$trial_dropin" ] || fail "the interrupted tune never wrote its trial drop-in"
sleep 8
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
cat "$LAB_RESULTS/tune-int.txt"
[ "$rc" -eq 130 ] || fail "interrupted tune exited $rc, expected 130"
grep -q "every knob was put back as it was found" "$LAB_RESULTS/tune-int.txt" ||
	fail "the interrupted tune does not say the knobs were put back"
knob_files | diff -u "$LAB_RESULTS/knobs.before" - || fail "an interrupted tune left a knob changed"
[ ! -e "$trial_dropin" ] || fail "the interrupted tune left its trial drop-in"
left_test_file && fail "interrupted tune left its test file in $mnt"
phase_end
phase_total bench.total
echo "bench: PASS"
