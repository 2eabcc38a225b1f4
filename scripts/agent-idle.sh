#!/usr/bin/env bash
# The node agent's idle cost: CPU and resident memory of a running `credguard agent` (interval
# 1 s) sampled once a second for a minute, from /proc/<pid>/stat and /proc/<pid>/status.
# Linux only. Results go in docs/PERFORMANCE.md ("The node agent at idle").
#
#   scripts/agent-idle.sh [--seconds N] [--binary PATH] [-- AGENT_FLAGS...]
#
# Default binary: target/release/credguard (built with `cargo build --release -p
# credguard-cli` when missing); default flags: `--alive-from containerd:<a socket nobody
# serves>` (every round fails at the source: the loop, the log and the metrics at work,
# nothing removed) plus `--interval 1s --metrics-listen 127.0.0.1:0`. Give
# `-- --alive-from containerd:/path/to/containerd.sock` to measure against a real runtime.
set -euo pipefail

seconds=60
binary=""
flags=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --) shift; flags=("$@"); break ;;
    *) echo "usage: $0 [--seconds N] [--binary PATH] [-- AGENT_FLAGS...]" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z $binary ]]; then
    binary="${CARGO_TARGET_DIR:-$root/target}/release/credguard"
    [[ -x $binary ]] || cargo build --release -p credguard-cli --manifest-path "$root/Cargo.toml"
fi
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
[[ ${#flags[@]} -gt 0 ]] || flags=(--alive-from "containerd:$work/nobody.sock")
"$binary" --backend emulator --state-dir "$work/state" --log-level info agent \
    --interval 1s "${flags[@]}" >"$work/out.txt" 2>"$work/err.txt" &
pid=$!

ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
# Let it start before measuring; 60 s bounds a hang.
for _ in $(seq 600); do
    grep -q "agent started" "$work/err.txt" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/err.txt" >&2; exit 1; }
    sleep 0.1
done

printf '%6s %8s %10s\n' second "cpu %" "rss KiB"
first_rss=$(rss)
prev=$(cpu)
total=0
max_rss=$first_rss
min_rss=$first_rss
for s in $(seq "$seconds"); do
    sleep 1
    now=$(cpu)
    r=$(rss)
    pct=$(awk -v d=$((now - prev)) -v t="$ticks" 'BEGIN { printf "%.1f", 100 * d / t }')
    printf '%6d %8s %10d\n' "$s" "$pct" "$r"
    total=$((total + now - prev))
    prev=$now
    ((r > max_rss)) && max_rss=$r
    ((r < min_rss)) && min_rss=$r
done
last_rss=$(rss)
kill -TERM "$pid"
wait "$pid" || { echo "the agent did not exit 0 on SIGTERM" >&2; exit 1; }
avg=$(awk -v d="$total" -v t="$ticks" -v n="$seconds" 'BEGIN { printf "%.2f", 100 * d / t / n }')
printf '\nover %d s: cpu %s %% on average (%d ticks of 1/%d s); rss first %d KiB, last %d KiB, min %d KiB, max %d KiB\n' \
    "$seconds" "$avg" "$total" "$ticks" "$first_rss" "$last_rss" "$min_rss" "$max_rss"
printf '%s\n' "$(cat "$work/out.txt")"
