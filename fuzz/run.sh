#!/usr/bin/env bash
# Run every fuzz target for a bounded time, each seeded with the real outputs of its tool.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]      (default 20)
#
# The corpus is filled at run time in a temporary directory, from the repository's
# tests/lab/fixtures-captured/ and, where it exists, ../shared/fixtures/ (real/ and lab/):
# nothing from ../shared is copied into the repository. Needs cargo-fuzz and a nightly
# toolchain. Prints, per target, the inputs libFuzzer ran and its time; exits non-zero on the
# first crash, leaving the input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
shared=${ISER_WIZARD_SHARED:-../../shared}/fixtures
corpus_root=$(mktemp -d /tmp/iser-fuzz-corpus.XXXXXX)
trap 'rm -rf "$corpus_root"' EXIT

# target -> a grep -E pattern over fixture paths that are output of its tool.
declare -A seeds=(
  [answers_text]='answers|\.json$'
  [iscsiadm]='iscsiadm|initiatorname|iscsi-node'
  [multipath]='multipath'
  [lsblk]='lsblk'
  [blkid]='blkid'
  [ibstat]='ibstat|sysfs'
  [netlink]='ip-|rdma'
)

sources=(../tests/lab/fixtures-captured)
[ -d "$shared" ] && sources+=("$shared/real" "$shared/lab") ||
  echo "fuzz: $shared is absent; seeding from the committed captures only"

cargo +nightly fuzz build
total_runs=0
start=$(date +%s)
for t in answers_text iscsiadm multipath lsblk blkid ibstat netlink; do
  dir=$corpus_root/$t
  mkdir -p "$dir"
  # A target with no fixture of its own (the answers file) starts from what is added below.
  { find "${sources[@]}" -type f ! -name '*.md' 2>/dev/null | grep -E "${seeds[$t]}" || true; } |
    while read -r f; do cp "$f" "$dir/$(printf '%s' "$f" | md5sum | cut -c1-16)"; done
  [ "$t" != answers_text ] || cp ../templates/answers.json "$dir/template.json"
  seeded=$(find "$dir" -type f | wc -l)
  log=$corpus_root/$t.log
  if ! cargo +nightly fuzz run "$t" "$dir" -- -max_total_time="$secs" -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $t FAILED (input saved under fuzz/artifacts/$t/)"
    exit 1
  fi
  runs=$(awk '/^stat::number_of_executed_units:/ {print $NF}' "$log")
  seeds_n=$(find "$dir" -type f | wc -l)
  echo "fuzz: $t: ${runs:-?} inputs in ${secs}s, seeded with $seeded files (corpus $seeds_n after), 0 crashes"
  total_runs=$((total_runs + ${runs:-0}))
done
echo "fuzz: all targets: $total_runs inputs in $(($(date +%s) - start))s, 0 crashes"
