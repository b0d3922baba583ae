#!/usr/bin/env bash
# Copy the command outputs a lab run captured into tests/lab/fixtures-captured/.
#
# Usage: tests/lab/update-fixtures.sh [--into SUBDIR] RESULTS_DIR...
#   --into SUBDIR  write into fixtures-captured/SUBDIR/ (e.g. trixie, for a --suite trixie run)
#   RESULTS_DIR  a run-scenario.sh --out folder (or its lab-results/); when several are given,
#                a name already taken from an earlier folder is not overwritten, so list the
#                plain baseline first, then e.g. the --data-lun baseline for its *-data-lun files.
# Typical refresh:
#   tests/lab/run-all.sh baseline baseline:--data-lun
#   tests/lab/update-fixtures.sh /tmp/iser-lab/baseline /tmp/iser-lab/baseline-data-lun
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=$here/fixtures-captured
if [ "${1:-}" = --into ]; then
	[[ ${2:-} =~ ^[a-z0-9-]+$ ]] || { echo "update-fixtures: --into wants a folder name" >&2; exit 2; }
	dest=$dest/$2
	shift 2
fi
[ $# -gt 0 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
mkdir -p "$dest"
declare -A taken=()
for d in "$@"; do
	src=$d/lab-results/captured
	[ -d "$src" ] || src=$d/captured
	[ -d "$src" ] || { echo "update-fixtures: no captured/ under $d" >&2; exit 1; }
	for f in "$src"/*.txt; do
		n=$(basename "$f")
		[ -z "${taken[$n]:-}" ] || continue
		taken[$n]=1
		cp "$f" "$dest/$n"
	done
done
echo "update-fixtures: ${#taken[@]} files in $dest"
