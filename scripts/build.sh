#!/usr/bin/env bash
# Cross-builds totpbox's commands into dist/, statically (CGO_ENABLED=0),
# with the version stamped into main.version:
#   totpd, totpctl           linux/arm GOARM=6 (Pi Zero, 1), GOARM=7 (Pi 2, 3), arm64
#   totpserver, totpsim      linux/amd64, linux/arm64
# Binaries are named dist/<command>-<os>-<arch>[v<arm>], e.g.
# dist/totpd-linux-armv6. The version is $VERSION, or else
# `git describe --always --dirty`.
#
# Usage: scripts/build.sh [COMMAND[:OS/ARCH[/ARM]]...]   (default: all four,
# every target), e.g. scripts/build.sh totpd:linux/arm/6 totpserver
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
out=${DIST:-dist}
mkdir -p "$out"

# targets COMMAND prints the os/arch[/arm] targets a command is built for.
targets() {
	case $1 in
	totpd | totpctl) echo linux/arm/6 linux/arm/7 linux/arm64 ;;
	totpserver | totpsim) echo linux/amd64 linux/arm64 ;;
	*)
		echo "build.sh: unknown command $1 (want totpd, totpctl, totpserver or totpsim)" >&2
		exit 2
		;;
	esac
}

args=("$@")
((${#args[@]})) || args=(totpd totpctl totpserver totpsim)
for arg in "${args[@]}"; do
	cmd=${arg%%:*}
	want=$(targets "$cmd")
	if [[ $arg == *:* ]]; then
		if [[ " $want " != *" ${arg#*:} "* ]]; then
			echo "build.sh: $cmd is not built for ${arg#*:} (only $want)" >&2
			exit 2
		fi
		want=${arg#*:}
	fi
	for target in $want; do
		IFS=/ read -r goos goarch goarm <<<"$target"
		name="$cmd-$goos-$goarch${goarm:+v$goarm}"
		echo "build $out/$name ($version)"
		CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOARM=$goarm \
			go build -buildvcs=false \
			-ldflags "-s -w -X main.version=$version" \
			-o "$out/$name" "./cmd/$cmd"
	done
done
