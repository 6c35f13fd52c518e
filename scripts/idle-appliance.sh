#!/usr/bin/env bash
# Measures one idle appliance (`totpsim serve --no-server`) over real time:
# every minute, the CPU the process used in that minute (utime + stime from
# /proc/PID/stat) as a percentage of one core, and its resident memory
# (VmRSS from /proc/PID/status, with its anonymous part, RssAnon: the heap
# and stacks; the rest is mostly the binary's pages, mapped in as code runs
# for the first time); at the end the median and maximum CPU, the RSS
# growth after the first minute and the range RSS kept to over minutes 2
# to the end (flat after the first minute: the highest of them is not over
# minute 1's).
# Usage: scripts/idle-appliance.sh [MINUTES [totpsim flags...]], e.g. 10
# The first minute after start is reported but not counted in the median:
# start-up (clock acquisition, first frames) is not idle.
set -euo pipefail
cd "$(dirname "$0")/.."
mins=${1:-10}
tmp=$(mktemp -d)
bin=$tmp/totpsim
data=$tmp/data
go build -o "$bin" ./cmd/totpsim
"$bin" serve --no-server --listen 127.0.0.1:0 --data "$data" "${@:2}" >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
tck=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
anon() { awk '/^RssAnon/ {print $2}' "/proc/$pid/status"; }
prev=$(ticks)
cpus=()
rss1=
anon1=
rsslo=
rsshi=
for ((m = 1; m <= mins; m++)); do
	sleep 60
	kill -0 "$pid" 2>/dev/null || { echo "totpsim exited; log:" >&2; cat "$tmp/log" >&2; exit 1; }
	now=$(ticks)
	r=$(rss)
	an=$(anon)
	pct=$(awk -v d=$((now - prev)) -v t="$tck" 'BEGIN { printf "%.3f", 100 * d / t / 60 }')
	prev=$now
	printf 'minute %3d: CPU %6s %% of a core, RSS %.1f MiB (anonymous %.1f MiB)\n' "$m" "$pct" \
		"$(awk -v r="$r" 'BEGIN { print r / 1024 }')" "$(awk -v r="$an" 'BEGIN { print r / 1024 }')"
	if ((m == 1)); then
		rss1=$r
		anon1=$an
	else
		cpus+=("$pct")
		if [[ -z $rsslo ]] || ((r < rsslo)); then rsslo=$r; fi
		if [[ -z $rsshi ]] || ((r > rsshi)); then rsshi=$r; fi
	fi
done
if ((${#cpus[@]} > 0)); then
	printf '%s\n' "${cpus[@]}" | sort -g | awk -v rss1="$rss1" -v rssn="$r" -v anon1="$anon1" -v anonn="$an" -v lo="$rsslo" -v hi="$rsshi" -v mins="$mins" '
		{ v[NR] = $1 }
		END {
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "minutes 2..%d: CPU median %.3f %% of a core, max %.3f %%; RSS %.1f MiB after minute 1, %.1f MiB at the end (%+.1f MiB; anonymous %+.1f MiB), %.1f to %.1f MiB over minutes 2..%d (%+.1f MiB at most)\n",
				mins, med, v[NR], rss1 / 1024, rssn / 1024, (rssn - rss1) / 1024, (anonn - anon1) / 1024, lo / 1024, hi / 1024, mins, (hi - rss1) / 1024 }'
fi
