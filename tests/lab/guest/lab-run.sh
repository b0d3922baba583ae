#!/usr/bin/env bash
# Inside the lab guest, started once by iser-lab.service after multi-user.target: set up the
# target, run the scenario, record everything under /lab-results, power the VM off.
#
# Reads /lab/env (written by run-scenario.sh): LAB_SCENARIO, LAB_TARGET_ARGS.
# Results: /lab-results/{boot,setup.log,scenario.log,timings,status,journal.log,dmesg.log,
#          captured/*.txt}. status holds the scenario's exit code (77 = skipped); a setup
#          failure is recorded as 125.
set -uo pipefail

R=/lab-results
mkdir -p "$R"
# shellcheck source=/dev/null
. /lab/env
export LAB_RESULTS=$R LAB_CAPTURE=$R/captured
[ -f /lab/answers.json ] && export LAB_ANSWERS=/lab/answers.json
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

echo "lab: target setup ${LAB_TARGET_ARGS:-}"
# shellcheck disable=SC2086 # LAB_TARGET_ARGS is a list of flags
if ! /lab/guest/target-setup.sh ${LAB_TARGET_ARGS:-} >"$R/setup.log" 2>&1; then
	cat "$R/setup.log"
	finish 125
fi
grep '^target-setup\.' "$R/setup.log" >>"$R/timings"

echo "lab: scenario $LAB_SCENARIO"
cd /lab || finish 125
bash /lab/scenario.sh 2>&1 | tee "$R/scenario.log"
finish "${PIPESTATUS[0]}"
