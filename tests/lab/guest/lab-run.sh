#!/usr/bin/env bash
# Inside the lab guest, started once by iser-lab.service after multi-user.target: set up the
# target, run the scenarios (/lab/scenarios/N-NAME.sh, in order), record everything under
# /lab-results, power the VM off.
#
# Reads /lab/env (written by run-scenario.sh): LAB_SCENARIO, LAB_TARGET_ARGS ("--none": no
# target), LAB_SUITE.
# /lab/pkg/*.deb (run-scenario.sh --deb): installed with dpkg -i before anything else, its
# man page checked (package.log); a package that does not install is a lab failure (125).
# Results: /lab-results/{boot,package.log,setup.log,scenario.log,timings,status,status.NAME,journal.log,
#          dmesg.log,captured/*.txt}. status.NAME holds each scenario's exit code (77 =
#          skipped); status the first that is neither 0 nor 77, else 0 when one passed, else
#          77; a setup failure is recorded as 125.
set -uo pipefail

R=/lab-results
mkdir -p "$R"
# shellcheck source=/dev/null
. /lab/env
export LAB_RESULTS=$R LAB_CAPTURE=$R/captured
[ -x /usr/local/bin/iser-wizard ] && export LAB_WIZARD=/usr/local/bin/iser-wizard

finish() {
	echo "$1" >"$R/status"
	journalctl -b --no-pager >"$R/journal.log" 2>&1
	dmesg >"$R/dmesg.log" 2>&1
	echo "lab: scenario $LAB_SCENARIO status $1, powering off"
	sync
	systemctl poweroff -f
	exit 0
}

# If the VM is killed at the host's timeout, what was written by then should be on disk.
while sleep 5; do sync; done &

{
	echo "uptime $(cut -d' ' -f1 /proc/uptime)"
	systemd-analyze 2>&1 | head -n1
	uname -r
} >"$R/boot"
awk '{print "boot " $1}' /proc/uptime >>"$R/timings"

# The package under test (--deb): what an admin does on a fresh host, dpkg -i, with the
# dependencies the image already has. The scenarios then run the packaged binary.
install_package() {
	local deb page
	deb=$(ls /lab/pkg/*.deb) || return 1
	echo "dpkg -i $deb"
	dpkg -i "$deb" || return 1
	dpkg -s iser-wizard | grep -E '^(Status|Version|Depends|Recommends):'
	dpkg -L iser-wizard
	[ -x /usr/bin/iser-wizard ] || { echo "no /usr/bin/iser-wizard"; return 1; }
	/usr/bin/iser-wizard --version || return 1
	# `man iser-wizard-answers`: the image has no man-db (minbase), so the page is checked as
	# installed and, where a formatter is there, rendered; every key heading must be in it.
	page=/usr/share/man/man5/iser-wizard-answers.5.gz
	[ -f "$page" ] || { echo "no $page"; return 1; }
	if command -v man >/dev/null; then
		echo "man iser-wizard-answers:"
		man iser-wizard-answers 2>&1 | head -n 20
		man iser-wizard-answers >/dev/null 2>&1 || return 1
	elif command -v groff >/dev/null; then
		echo "groff -man of $page (no man-db in the image):"
		zcat "$page" | groff -man -Tutf8 2>&1 | head -n 20
	elif command -v mandoc >/dev/null; then
		echo "mandoc of $page (no man-db in the image):"
		zcat "$page" | mandoc -Tutf8 2>&1 | head -n 20
	else
		echo "no man, groff or mandoc in the image: $page checked as roff only"
	fi
	zcat "$page" | grep -q '^\.TH ' || { echo "$page is not a man page"; return 1; }
	echo "$page: $(zcat "$page" | grep -c '^\.SS ') keys"
	zcat "$page" | grep -q '^\.SS .*volume.mount_point' || { echo "$page lacks volume.mount_point"; return 1; }
}
if compgen -G '/lab/pkg/*.deb' >/dev/null; then
	echo "lab: installing the package under test"
	if ! install_package >"$R/package.log" 2>&1; then
		cat "$R/package.log"
		echo "lab: the package did not install" | tee -a "$R/setup.log"
		finish 125
	fi
	export LAB_WIZARD=/usr/bin/iser-wizard
	awk '{print "package " $1}' /proc/uptime >>"$R/timings"
fi

if [ "${LAB_TARGET_ARGS:-}" = --none ]; then
	echo "lab: no target (the scenarios need none)" | tee "$R/setup.log"
else
	echo "lab: target setup ${LAB_TARGET_ARGS:-}"
	# shellcheck disable=SC2086 # LAB_TARGET_ARGS is a list of flags
	if ! /lab/guest/target-setup.sh ${LAB_TARGET_ARGS:-} >"$R/setup.log" 2>&1; then
		cat "$R/setup.log"
		finish 125
	fi
	grep '^target-setup\.' "$R/setup.log" >>"$R/timings"
fi

cd /lab || finish 125
overall=
passed=0
for s in $(find /lab/scenarios -name '*.sh' -printf '%f\n' | sort -n); do
	n=${s#*-}
	n=${n%.sh}
	echo "lab: scenario $n" | tee -a "$R/scenario.log"
	unset LAB_ANSWERS
	[ -f "/lab/answers/$n.json" ] && export LAB_ANSWERS=/lab/answers/$n.json
	# Each scenario in its own bash: its exit (fail, skip) ends only itself.
	LAB_SCENARIO_NAME=$n bash "/lab/scenarios/$s" 2>&1 | tee -a "$R/scenario.log"
	rc=${PIPESTATUS[0]}
	echo "$rc" >"$R/status.$n"
	echo "lab: scenario $n status $rc" | tee -a "$R/scenario.log"
	case $rc in
	0) passed=1 ;;
	77) ;;
	*) [ -n "$overall" ] || overall=$rc ;;
	esac
done
if [ -z "$overall" ]; then
	overall=77
	[ "$passed" -eq 0 ] || overall=0
fi
finish "$overall"
