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
	# printf, not print: awk prints a non-integral number with OFMT "%.6g", and an epoch time
	# rounded to six digits can lie an hour in the past (an instant timeout).
	end=$(awk "BEGIN{printf \"%.3f\", $(date +%s.%N) + $secs}")
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

# --- Checks shared by the baseline and the wizard scenarios --------------------------------
# Host ports of the lab and their subnets (prefix of the dotted address).
declare -A LAB_PORT_NET=([vA]=192.168.130. [vB]=192.168.131.)

# Number of paths of map $1 (a WWID) that `multipath -ll` shows "active ready running".
active_paths() {
	multipath -ll 2>/dev/null | awk -v w="$1" '
		/^[^ |`].* dm-[0-9]+ / { cur = ($1 == w || $2 == "(" w ")") }
		cur && /active ready running/ { n++ }
		END { print n + 0 }'
}

# 4 sessions to the lab target, all iser, each on the iface whose host port owns the portal's
# subnet (iface-vA or any iface bound to vA for 192.168.130.x, likewise vB). A session with no
# target name is a SendTargets discovery session that iscsid kept after its iscsiadm was
# killed (LIO now and then rejects a SendTargets request over iSER and the initiator waits):
# reported, not counted.
check_sessions() {
	local all sessions stale n
	all=$(iscsiadm -m session 2>/dev/null) || fail "no iSCSI sessions"
	sessions=$(grep -F -- " $LAB_TARGET_IQN " <<<"$all" || true)
	stale=$(grep -vF -- " $LAB_TARGET_IQN " <<<"$all" || true)
	[ -z "$stale" ] || echo "note: sessions not to the target (left by a killed discovery): $stale"
	n=$(grep -c . <<<"$sessions")
	[ "$n" -eq 4 ] || fail "expected 4 sessions to $LAB_TARGET_IQN, found $n: $all"
	[ "$(grep -c '^iser: ' <<<"$sessions")" -eq 4 ] || fail "not all sessions are iser: $sessions"
	iscsiadm -m session -P 3 | awk -v t="$LAB_TARGET_IQN" '
		/^Target: / { ours = ($2 == t) }
		ours && /Current Portal:/ { split($3, a, ":"); portal = a[1] }
		ours && /Iface Netdev:/ { print $3, portal }' >/tmp/lab-session-netdevs
	[ "$(grep -c . /tmp/lab-session-netdevs)" -eq 4 ] || fail "could not read each session's netdev"
	while read -r netdev portal; do
		[[ $portal == "${LAB_PORT_NET[$netdev]:-none}"* ]] ||
			fail "session to $portal is bound to $netdev, which is on another subnet"
	done </tmp/lab-session-netdevs
}

# Map $1 has exactly $2 active paths (default 4).
check_map() {
	local n
	n=$(active_paths "$1")
	[ "$n" -eq "${2:-4}" ] || fail "map $1 has $n active paths, expected ${2:-4}"
}

# Something is mounted at $1; prints its source.
check_mounted() {
	findmnt -n -o SOURCE "$1" || fail "$1 is not mounted"
}

# Every soft-RoCE device carried traffic: the sessions really crossed vA/vB and tA/tB rather
# than being short-circuited inside the kernel.
check_rdma_traffic() {
	local d s
	for d in rxe0 rxe1 rxetA rxetB; do
		s=$(rdma statistic show link "$d/1" | grep -o 'sent_pkts [0-9]*' | cut -d' ' -f2)
		[ "${s:-0}" -gt 100 ] || fail "$d sent only ${s:-0} packets: traffic did not cross its link"
	done
}

# The 4 initiator RDMA connections: rxe0 (on vA) to subnet A, rxe1 (on vB) to subnet B.
check_rdma_paths() {
	local conns
	conns=$(rdma res show cm_id | awk '/comm \[ib_iser\]/ && /state CONNECT/ {
		sub("/1$", "", $2); for (i = 1; i < NF; i++) if ($i == "dst-addr") print $2, $(i + 1) }')
	# One connection per portal, each from the port on its subnet. A discovery session that
	# LIO left hanging (README, "Known limits") adds a second connection to a portal that is
	# already connected: counted once, and said.
	local pairs
	pairs=$(sort -u <<<"$conns")
	[ "$(grep -c . <<<"$pairs")" -eq 4 ] || fail "expected 4 iSER RDMA connections: $conns"
	[ "$(grep -c . <<<"$conns")" -eq 4 ] ||
		echo "note: an extra iSER connection to a connected portal (a leftover discovery session): $conns"
	grep -qvE '^(rxe0 192\.168\.130\.|rxe1 192\.168\.131\.)' <<<"$conns" &&
		fail "an iSER connection runs on the wrong port: $conns"
	return 0
}

# The wizard binary, or skip the scenario.
need_wizard() {
	[ -n "${LAB_WIZARD:-}" ] || skip "no wizard binary in the guest (run-scenario.sh --wizard PATH)"
	[ -n "${LAB_ANSWERS:-}" ] || fail "no answers file in the guest (run-scenario.sh --answers FILE)"
}

# Keep the wizard's state directory and worksheet with the results.
save_wizard_state() {
	local dir=${LAB_WIZARD_STATE_DIR:-/var/lib/iser-wizard}
	if [ -d "$dir" ]; then
		rm -rf "$LAB_RESULTS/wizard-state"
		cp -a "$dir" "$LAB_RESULTS/wizard-state" || true
	fi
	"$LAB_WIZARD" worksheet >"$LAB_RESULTS/worksheet.md" 2>&1 || true
}

# The /etc/fstab lines (not comments) that mount something on $1.
fstab_lines() {
	awk -v m="$1" '$1 !~ /^#/ && $2 == m' /etc/fstab
}
