# shellcheck shell=bash
# Helpers for lab scenarios, sourced inside the guest (bash). Not executable on its own.
#
#   phase NAME      end the running phase (if any), start timing NAME
#   phase_end       end the running phase; times go to $LAB_RESULTS/timings as "NAME SECONDS"
#   cap NAME CMD..  run CMD, save "+ cmd" / output / "# exit=N" to $LAB_CAPTURE/NAME.txt
#                   (the format of the project's lab fixtures); returns CMD's status
#   wait_for SECS DESC CMD..  retry CMD every 0.5 s until it succeeds or SECS pass
#   fail MSG        print MSG and exit 1
#   skip MSG        print MSG and exit 77 (the harness reports the scenario as skipped)
# Facts about the lab target (IQN, portals, WWIDs) are in /run/lab/target.env, loaded here.

LAB_RESULTS=${LAB_RESULTS:-/lab-results}
LAB_CAPTURE=${LAB_CAPTURE:-$LAB_RESULTS/captured}
mkdir -p "$LAB_CAPTURE"
# shellcheck source=/dev/null
[ -f /run/lab/target.env ] && . /run/lab/target.env

_phase_name=
_phase_start=
_lab_t0=$(date +%s.%N)

phase_end() {
	[ -n "$_phase_name" ] || return 0
	local now
	now=$(date +%s.%N)
	awk -v n="$_phase_name" "BEGIN{printf \"%s %.2f\\n\", n, $now - $_phase_start}" >>"$LAB_RESULTS/timings"
	echo "=== phase $_phase_name done ($(awk "BEGIN{printf \"%.2f\", $now - $_phase_start}") s)"
	_phase_name=
}

phase() {
	phase_end
	_phase_name=$1
	_phase_start=$(date +%s.%N)
	echo "=== phase $1"
}

# Total time since lib.sh was sourced, recorded as "NAME SECONDS".
phase_total() {
	phase_end
	local now
	now=$(date +%s.%N)
	awk -v n="$1" "BEGIN{printf \"%s %.2f\\n\", n, $now - $_lab_t0}" >>"$LAB_RESULTS/timings"
}

cap() {
	local name=$1 rc=0
	shift
	{
		# xtrace prints the command exactly as the shell quotes it, like the fixtures' first line.
		(
			PS4='+ '
			BASH_XTRACEFD=1
			set -x
			"$@"
		) 2>&1 || rc=$?
		echo "# exit=$rc"
	} >"$LAB_CAPTURE/$name.txt"
	return "$rc"
}

wait_for() {
	local secs=$1 desc=$2
	shift 2
	local end
	end=$(awk "BEGIN{print $(date +%s.%N) + $secs}")
	until "$@" >/dev/null 2>&1; do
		if awk "BEGIN{exit !($(date +%s.%N) > $end)}"; then
			echo "timed out after ${secs}s waiting for: $desc" >&2
			return 1
		fi
		sleep 0.5
	done
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}
