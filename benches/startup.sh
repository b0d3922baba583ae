#!/usr/bin/env bash
# Startup and dry-run timing of the wizard's own work (release build).
#
#   bash benches/startup.sh [RUNS]
#
# Prints mean wall time of `iser-wizard --version` (startup) and of a whole-flow
# `run --dry-run --answers` against a scratch root that looks like a ready Debian 12 RoCE host
# (probes of missing tools fail fast there, so the figure is the wizard's own time plus the
# few real probes it runs: uname, modprobe -n). Goals: startup under 10 ms, dry run under
# 100 ms. Uses hyperfine when installed (apt-get install hyperfine), else a shell loop.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
cargo build --release --locked -q
bin=$PWD/target/release/iser-wizard
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
root=$scratch/root
mkdir -p "$root/etc" "$root/sys/class/infiniband/rxe0/ports/1" "$root/sys/module/ib_iser"
printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' >"$root/etc/os-release"
echo Ethernet >"$root/sys/class/infiniband/rxe0/ports/1/link_layer"
"$bin" answers --template >"$scratch/answers.json"
dry=("$bin" run --dry-run --answers "$scratch/answers.json" --root "$root" --state-dir "$scratch/state")

if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs "$runs" -i "$bin --version" "${dry[*]}"
  exit 0
fi
measure() {
  local label=$1; shift
  local start end
  "$@" >/dev/null 2>&1 || true
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do "$@" >/dev/null 2>&1 || true; done
  end=$(date +%s%N)
  awk -v l="$label" -v t=$((end - start)) -v n="$runs" 'BEGIN { printf "%-28s mean %.2f ms over %d runs\n", l, t / n / 1e6, n }'
}
measure "startup (--version)" "$bin" --version
measure "run --dry-run --answers" "${dry[@]}"
