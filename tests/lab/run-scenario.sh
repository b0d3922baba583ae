#!/usr/bin/env bash
# Boot the lab VM once and run one scenario in it.
#
# Usage: tests/lab/run-scenario.sh SCENARIO [options]
#   SCENARIO            a name under tests/lab/scenarios/ (baseline, attach, ...), a path to
#                       a bash script, or a chain "a+b" of names run one after the other in the
#                       same VM (one boot; results of each in status.NAME, the logs in order)
#   --suite S           the guest's Debian release: bookworm (default, or $ISER_LAB_SUITE) or
#                       trixie; build-image.sh builds and caches each
#   --wizard PATH       copy this binary to /usr/local/bin/iser-wizard in the guest
#   --deb PATH          install this .deb in the guest (dpkg -i, before the target setup and
#                       the scenarios; a package that does not install fails the run as a lab
#                       failure, 125): the scenarios run the packaged /usr/bin/iser-wizard.
#                       Takes the place of --wizard (given both, the .deb is tested)
#   --answers FILE      the answers file of every scenario (default: the first of
#                       answers/NAME.SUITE.json, NAME.json, default.SUITE.json, default.json),
#                       copied to /lab/answers/NAME.json; scenarios see it as $LAB_ANSWERS
#   --data-lun          target variant: LUN 0 already carries an ext4 file system with data
#                       (also requested by a "# lab-target-args: --data-lun" line in the scenario)
#   --env NAME=VALUE    export NAME=VALUE to the scenario (repeatable)
#   --out DIR           where results go (default ${ISER_LAB_OUT:-/tmp/iser-lab}/NAME);
#                       emptied first
#   --timeout SECS      wall-clock limit for the VM (default ${ISER_LAB_TIMEOUT:-900})
#   --keep-image        keep the per-run disk image (DIR/run.img) for inspection
#   --console           stream the VM's serial console here (it is always in DIR/console.log)
#
# Lines a scenario may carry: "# lab-needs: wizard" (skipped, 77, without booting when no
# --wizard is given), "# lab-needs: no-target" (no LIO target is set up for it),
# "# lab-target-args: FLAGS", "# lab-copy: PATH" (a file or folder of the repository copied to
# /lab/repo/PATH in the guest).
# Exit status: the scenario's (0 pass, 77 skipped, other = fail); 124 the VM timed out;
# 125 the lab itself failed (image, boot, target setup).
# Results: DIR/lab-results/ (scenario.log, setup.log, timings, status, captured/, journal.log,
# dmesg.log), DIR/console.log, DIR/host-timings.
# One lab VM at a time on the machine: two at once on two cores made LIO logins time out. The
# run holds ${ISER_LAB_LOCK:-/run/lock/iser-wizard-lab.lock} (flock) from the image check to
# the VM's poweroff, and says so when it has to wait for another run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=${ISER_LAB_SUITE:-bookworm}
usage() { sed -n '2,39p' "$0"; }

scenario=
wizard=
deb=
answers=
target_args=
out=
timeout_s=${ISER_LAB_TIMEOUT:-900}
keep=0
console=0
envs=()
while [ $# -gt 0 ]; do
	case $1 in
	--wizard) wizard=$2; shift 2 ;;
	--deb) deb=$2; shift 2 ;;
	--suite) suite=$2; shift 2 ;;
	--answers) answers=$2; shift 2 ;;
	--data-lun) target_args="$target_args --data-lun"; shift ;;
	--env)
		[[ $2 == [A-Za-z_]*=* ]] || { echo "run-scenario: --env wants NAME=VALUE" >&2; exit 2; }
		envs+=("$2"); shift 2 ;;
	--out) out=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--keep-image) keep=1; shift ;;
	--console) console=1; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "run-scenario: unknown option: $1" >&2; usage >&2; exit 2 ;;
	*)
		[ -z "$scenario" ] || { echo "run-scenario: one scenario at a time" >&2; exit 2; }
		scenario=$1; shift ;;
	esac
done
[ -n "$scenario" ] || { usage >&2; exit 2; }

# A chain "a+b+c" runs several scenarios one after the other in the same VM (one boot, one
# target setup): for scenarios that can share a host (see README).
scripts=()
names=()
if [ -f "$scenario" ]; then
	scripts=("$(readlink -f "$scenario")")
	names=("$(basename "$scenario" .sh)")
else
	IFS=+ read -r -a names <<<"$scenario"
	for n in "${names[@]}"; do scripts+=("$here/scenarios/$n.sh"); done
fi
name=$(IFS=+; echo "${names[*]}")
for s in "${scripts[@]}"; do
	[ -f "$s" ] || { echo "run-scenario: no scenario $s" >&2; exit 2; }
done
# Answers: --answers for every scenario, else each one's answers/NAME.json or default.json.
[ -z "$answers" ] || [ -f "$answers" ] || { echo "run-scenario: no answers file $answers" >&2; exit 2; }
# What the scenarios ask of the harness, in comment lines of their own: a chain is skipped
# without booting only when all of its scenarios need the wizard and none is given; the
# target is not set up only when none of them needs it.
need_wizard=0
no_target=0
for s in "${scripts[@]}"; do
	grep -q '^# lab-needs: wizard' "$s" && need_wizard=$((need_wizard + 1))
	grep -q '^# lab-needs: no-target' "$s" && no_target=$((no_target + 1))
	# shellcheck disable=SC2013 # the flags are words
	for a in $(sed -n 's/^# lab-target-args://p' "$s"); do
		[[ " $target_args " == *" $a "* ]] || target_args="$target_args $a"
	done
done
if [ -n "$deb" ]; then
	[ -f "$deb" ] || { echo "run-scenario: no package $deb" >&2; exit 2; }
	# The package is what gets tested: no binary is copied beside it, which PATH
	# (/usr/local/bin first) would run instead of the packaged one.
	wizard=
fi
if [ "$need_wizard" -eq ${#scripts[@]} ] && [ -z "$wizard" ] && [ -z "$deb" ]; then
	echo "run-scenario[$name]: SKIPPED: needs the wizard binary (--wizard PATH or --deb PATH)" >&2
	exit 77
fi
if [ "$no_target" -eq ${#scripts[@]} ]; then
	[ -z "${target_args# }" ] || { echo "run-scenario: no-target scenarios with target args" >&2; exit 2; }
	target_args=--none
fi
[ -z "$wizard" ] || [ -x "$wizard" ] || { echo "run-scenario: $wizard is not an executable" >&2; exit 2; }
out=${out:-${ISER_LAB_OUT:-/tmp/iser-lab}/$name}

log() { printf 'run-scenario[%s]: %s\n' "$name" "$*" >&2; }
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }

# The machine-wide lab lock, held (fd 9, inherited by qemu) until this script exits. Who
# holds it is written into the file, for the next run's "waiting" line.
lock=${ISER_LAB_LOCK:-/run/lock/iser-wizard-lab.lock}
exec 9>>"$lock"
if ! flock -n 9; then
	holder=$(head -n1 "$lock" 2>/dev/null || true)
	log "waiting for the lab lock $lock (held by: ${holder:-someone who did not say, e.g. an image build})"
	t_wait=$(now)
	flock 9
	log "got the lab lock after $(since "$t_wait") s"
fi
printf 'pid %s, scenario %s, since %s\n' "$$" "$name" "$(date -Is)" >"$lock"

"$here/build-image.sh" --suite "$suite"
cache=${ISER_LAB_CACHE:-/var/cache/iser-wizard-lab}/$suite
for f in base.img vmlinuz initrd.img; do
	[ -f "$cache/$f" ] || { log "missing $cache/$f"; exit 125; }
done

rm -rf "$out"
mkdir -p "$out"
out=$(readlink -f "$out")
t0=$(now)

# --- Per-run image: a sparse copy of the base, then files written in with debugfs ----------
img=$out/run.img
cp --reflink=auto --sparse=always "$cache/base.img" "$img"
stage=$out/stage
mkdir -p "$stage/lab/guest" "$stage/lab/scenarios" "$stage/lab/answers" \
	"$stage/etc/systemd/system/multi-user.target.wants"
cp "$here"/guest/*.sh "$here"/guest/*.exp "$stage/lab/guest/"
for i in "${!scripts[@]}"; do
	n=${names[$i]}
	cp "${scripts[$i]}" "$stage/lab/scenarios/$i-$n.sh"
	if [ -n "$answers" ]; then
		cp "$answers" "$stage/lab/answers/$n.json"
	else
		for a in "$here/answers/$n.$suite.json" "$here/answers/$n.json" \
			"$here/answers/default.$suite.json" "$here/answers/default.json"; do
			[ -f "$a" ] && { cp "$a" "$stage/lab/answers/$n.json"; break; }
		done
	fi
	# Files of the repository a scenario reads ("# lab-copy: tests/golden"): under /lab/repo/.
	# shellcheck disable=SC2013 # paths without blanks
	for c in $(sed -n 's/^# lab-copy://p' "${scripts[$i]}"); do
		[ -e "$here/../../$c" ] || { log "no $c to copy for ${names[$i]}"; exit 2; }
		mkdir -p "$stage/lab/repo/$(dirname "$c")"
		cp -r "$here/../../$c" "$stage/lab/repo/$(dirname "$c")/"
	done
done
if [ -n "$deb" ]; then
	mkdir -p "$stage/lab/pkg"
	cp "$deb" "$stage/lab/pkg/"
fi
if [ -n "$wizard" ]; then
	mkdir -p "$stage/usr/local/bin"
	cp "$wizard" "$stage/usr/local/bin/iser-wizard"
	chmod 755 "$stage/usr/local/bin/iser-wizard"
fi
{
	printf 'LAB_SCENARIO=%q\nLAB_TARGET_ARGS=%q\nLAB_SUITE=%q\n' "$name" "${target_args# }" "$suite"
	for e in "${envs[@]}"; do
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
	done
} >"$stage/lab/env"
cat >"$stage/etc/systemd/system/iser-lab.service" <<'UNIT'
[Unit]
Description=iSER lab: target setup and scenario
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/lab/guest/lab-run.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT

{
	# Directories first (parents before children), then files; debugfs takes no -p.
	(cd "$stage" && find . -mindepth 1 -type d | sed 's|^\.||' | sort) | while read -r d; do
		printf 'mkdir %s\n' "$d"
	done
	(cd "$stage" && find . -type f | sed 's|^\.||' | sort) | while read -r f; do
		printf 'rm %s\nwrite %s %s\n' "$f" "$stage$f" "$f"
	done
	echo "symlink /etc/systemd/system/multi-user.target.wants/iser-lab.service /etc/systemd/system/iser-lab.service"
} >"$out/debugfs.cmds"
debugfs -w -f "$out/debugfs.cmds" "$img" >"$out/debugfs.log" 2>&1
# debugfs goes on after a failed command and exits 0: look for errors ourselves. Expected
# noise: directories that exist, and rm of files that do not.
if grep -E 'error|Error|failed|not found|No such|Could not' "$out/debugfs.log" |
	grep -vE 'already exists|rm: File not found by ext2_lookup' >&2; then
	log "injecting files into the image failed (see $out/debugfs.log)"
	exit 125
fi
t_inject=$(since "$t0")
log "$suite image ready in $t_inject s; booting (timeout ${timeout_s}s)"

# --- Boot ----------------------------------------------------------------------------------
# KVM is not usable on these machines: software emulation (tcg). The guest has no network
# device at all: every lab link is a veth inside it.
t1=$(now)
qemu=(qemu-system-x86_64 -accel tcg ${ISER_LAB_QEMU_CPU:+-cpu "$ISER_LAB_QEMU_CPU"} -m 3072 -smp 2 -nographic -no-reboot ${ISER_LAB_QEMU_EXTRA:-}
	-nic none
	-kernel "$cache/vmlinuz" -initrd "$cache/initrd.img"
	-append "root=/dev/vda rw console=ttyS0 panic=-1 ${ISER_LAB_KERNEL_ARGS:-}"
	-drive "file=$img,if=virtio,format=raw")
rc_vm=0
if [ "$console" -eq 1 ]; then
	timeout --kill-after=10 "$timeout_s" "${qemu[@]}" </dev/null 2>&1 | tee "$out/console.log" || rc_vm=${PIPESTATUS[0]}
else
	timeout --kill-after=10 "$timeout_s" "${qemu[@]}" </dev/null >"$out/console.log" 2>&1 || rc_vm=$?
fi
t_vm=$(since "$t1")
log "VM ran $t_vm s (qemu exit $rc_vm)"

# --- Results -------------------------------------------------------------------------------
debugfs -R "rdump /lab-results $out" "$img" >"$out/rdump.log" 2>&1 || true
res=$out/lab-results
printf 'inject %s\nvm %s\ntotal %s\n' "$t_inject" "$t_vm" "$(since "$t0")" >"$out/host-timings"
[ "$keep" -eq 1 ] || rm -f "$img"
rm -rf "$stage"

if [ -f "$res/scenario.log" ]; then
	echo "----- scenario log ($name) -----"
	cat "$res/scenario.log"
	echo "----- end of scenario log -----"
fi
[ -f "$res/timings" ] && { echo "timings:"; sed 's/^/  /' "$res/timings"; }
if [ ${#names[@]} -gt 1 ]; then
	for n in "${names[@]}"; do
		echo "scenario $n: status $(cat "$res/status.$n" 2>/dev/null || echo "none (not run)")"
	done
fi
echo "host: image $t_inject s, VM $t_vm s"

if [ "$rc_vm" -eq 124 ] || [ "$rc_vm" -eq 137 ]; then
	log "TIMEOUT: the VM did not power off within ${timeout_s}s (console: $out/console.log)"
	tail -n 30 "$out/console.log" >&2
	exit 124
fi
if [ ! -f "$res/status" ]; then
	log "no status from the guest: the lab failed before the scenario ended (console: $out/console.log)"
	tail -n 30 "$out/console.log" >&2
	exit 125
fi
status=$(cat "$res/status")
if [ "$status" = 125 ]; then
	log "lab setup failed in the guest:"
	cat "$res/setup.log" >&2 || true
fi
case $status in
0) log "PASS" ;;
77) log "SKIPPED" ;;
*) log "FAIL (status $status); results in $res" ;;
esac
exit "$status"
