#!/usr/bin/env bash
# Measures the simulator idling in the code view: CPU seconds per minute and
# resident memory, from /proc, over a bounded run.
# Usage: scripts/sim-idle.sh [SECONDS [totpsim flags...]], e.g. 60 --no-server
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
bin=$(mktemp -d)/totpsim
data=$(mktemp -d)
go build -o "$bin" ./cmd/totpsim
args=(serve --listen 127.0.0.1:0 --server-listen 127.0.0.1:0 --data "$data" "${@:2}")
# A first run creates the data directory (and hashes the console admin's
# password with argon2id, 19 MiB); the measured run starts on it, as every
# run but the first does.
"$bin" "${args[@]}" >/dev/null 2>&1 &
first=$!
sleep 3
kill "$first"
wait "$first" 2>/dev/null || true
"$bin" "${args[@]}" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$(dirname "$bin")"' EXIT
sleep 5 # start-up and first sync are not idle
tck=$(getconf CLK_TCK)
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
sleep "$secs"
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
awk -v d=$(( (u1-u0)+(s1-s0) )) -v t="$tck" -v s="$secs" -v rss="$rss" -v hwm="$hwm" 'BEGIN {
	cpu = d / t
	printf "idle %d s: CPU %.3f s (%.3f s per minute, %.3f%% of one core); RSS %.1f MiB (peak %.1f MiB)\n",
		s, cpu, cpu * 60 / s, 100 * cpu / s, rss / 1024, hwm / 1024 }'
