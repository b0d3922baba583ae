#!/usr/bin/env bash
# The lab entry point for CI: build the guest image if needed, run scenarios one after the
# other (each boots its own VM), fail if any fails.
#
# Usage: tests/lab/run-all.sh [--suite S] [--wizard PATH | --deb PATH] [--out DIR] [SCENARIO...]
#   --suite S       the guest's Debian release, bookworm (default) or trixie
#   --wizard PATH   the iser-wizard binary to test (built for Debian 12 / glibc 2.36 or static);
#                   without it (or --deb) the wizard scenarios are reported as skipped
#   --deb PATH      the iser-wizard .deb, installed in each guest (run-scenario.sh --deb)
#   --out DIR       results, one folder per scenario (default ${ISER_LAB_OUT:-/tmp/iser-lab})
#   SCENARIO        names to run, each optionally followed by run-scenario.sh flags after a
#                   colon, e.g. "baseline:--data-lun". Default: baseline attach rerun data-lun
#                   interrupted
# Environment: ISER_LAB_CACHE (image cache), ISER_LAB_TIMEOUT (per VM, seconds).
# Exit status: 0 when every scenario passed or was skipped, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wizard=
deb=
suite=${ISER_LAB_SUITE:-bookworm}
out=${ISER_LAB_OUT:-/tmp/iser-lab}
list=()
while [ $# -gt 0 ]; do
	case $1 in
	--wizard) wizard=$(readlink -f "$2"); shift 2 ;;
	--deb) deb=$(readlink -f "$2"); shift 2 ;;
	--out) out=$2; shift 2 ;;
	--suite) suite=$2; shift 2 ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	-*) echo "run-all: unknown option $1" >&2; exit 2 ;;
	*) list+=("$1"); shift ;;
	esac
done
[ ${#list[@]} -gt 0 ] || list=(baseline attach rerun data-lun interrupted)
mkdir -p "$out"

t0=$(date +%s)
# Under the lab lock (run-scenario.sh takes it per VM): a build beside another run's VM
# starves both.
flock "${ISER_LAB_LOCK:-/run/lock/iser-wizard-lab.lock}" "$here/build-image.sh" --suite "$suite"
t_build=$(($(date +%s) - t0))

summary=()
failed=0
for spec in "${list[@]}"; do
	name=${spec%%:*}
	flags=()
	if [[ $spec == *:* ]]; then
		read -r -a flags <<<"${spec#*:}"
	fi
	label=$name${flags[*]:+ ${flags[*]}}
	# One folder per spec: "baseline:--data-lun" -> baseline-data-lun.
	dir=$out/$name
	for f in "${flags[@]}"; do dir=$dir-$(tr -c 'A-Za-z0-9=\n-' _ <<<"${f#--}"); done
	args=("$name" --suite "$suite" --out "$dir" "${flags[@]}")
	[ -z "$wizard" ] || args+=(--wizard "$wizard")
	[ -z "$deb" ] || args+=(--deb "$deb")
	echo "=== $label"
	s=$(date +%s)
	rc=0
	"$here/run-scenario.sh" "${args[@]}" || rc=$?
	d=$(($(date +%s) - s))
	case $rc in
	0) result=PASS ;;
	77) result=SKIP ;;
	*) result="FAIL($rc)"; failed=1 ;;
	esac
	summary+=("$(printf '%-28s %-9s %4ss  %s' "$label" "$result" "$d" "$dir")")
done

echo
echo "=== lab summary ($suite; image build/check ${t_build}s, total $(($(date +%s) - t0))s)"
printf '%s\n' "${summary[@]}"
exit "$failed"
