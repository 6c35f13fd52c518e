#!/usr/bin/env bash
# Measures boot to first code: a simulated appliance (totpsim serve,
# standalone, its fake NTP servers on 127.0.0.1 reachable) from process
# start to the first trusted code on its screen, read from /sim/state
# (polled every 20 ms). Cold: a fresh data directory, no drift file. Warm:
# the same directory again, with the drift file the cold run left at
# shutdown, once its clock knew the frequency. Usage: scripts/boot-to-code.sh [runs] [panel]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
panel=${2:-ssd1306-128x64}
bin=$(mktemp -d)/totpsim
go build -o "$bin" ./cmd/totpsim
work=$(mktemp -d)
trap 'rm -rf "$work" "$(dirname "$bin")"' EXIT
port=18460

# boot DIR [learn]: starts totpsim on DIR, prints the seconds to the first
# code, and stops it, which writes the drift file once the frequency is
# known; with learn, it first waits for that.
boot() {
	local start now pid state
	start=$(date +%s%N)
	"$bin" serve --no-server --panel "$panel" --listen "127.0.0.1:$port" --data "$1" >"$work/log" 2>&1 &
	pid=$!
	for _ in $(seq 1 6000); do
		state=$(curl -fs "127.0.0.1:$port/sim/state" || true)
		if grep -Eq '"code_shown": ?true' <<<"$state"; then
			now=$(date +%s%N)
			if [[ ${2:-} == learn ]]; then
				for _ in $(seq 1 600); do
					curl -fs "127.0.0.1:$port/sim/state" | grep -Eq '"frequency_known": ?true' && break
					sleep 0.2
				done
			fi
			kill -INT "$pid"
			wait "$pid" || true
			echo "scale=2; ($now - $start) / 1000000000" | bc
			return
		fi
		sleep 0.02
	done
	kill -INT "$pid"
	echo "no code within 120 s" >&2
	return 1
}

for i in $(seq 1 "$runs"); do
	dir=$work/run$i
	cold=$(boot "$dir" learn)
	[[ -f $dir/appliance-0/drift.json ]] || { echo "no drift file after the cold run" >&2; exit 1; }
	warm=$(boot "$dir")
	echo "run $i: cold (no drift file) ${cold} s, warm (drift file) ${warm} s"
done
