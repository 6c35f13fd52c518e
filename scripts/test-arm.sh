#!/usr/bin/env bash
# Runs the appliance's tests as a Pi runs them: cross-built for linux/arm
# (GOARM=6, the Pi Zero W) and linux/arm64, executed under Debian's
# qemu-user. The packages are everything totpd and totpctl link from this
# module, plus the e-paper and OLED emulators the tests drive the drivers on.
# Usage: scripts/test-arm.sh [arm|arm64]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."

mod=$(go list -m)
mapfile -t pkgs < <({
	go list -deps ./cmd/totpd ./cmd/totpctl | grep "^$mod/"
	printf '%s\n' "$mod/display" "$mod/clock" "$mod/enroll" "$mod/enroll/proto" \
		"$mod/configs" "$mod/sim/oled" "$mod/sim/epaper" "$mod/internal/testkit"
} | sort -u)

targets=("$@")
((${#targets[@]})) || targets=(arm arm64)
for t in "${targets[@]}"; do
	case $t in
	arm) goarch=arm goarm=6 qemu=qemu-arm ;;
	arm64) goarch=arm64 goarm='' qemu=qemu-aarch64 ;;
	*) echo "test-arm.sh: unknown target $t; allowed: arm, arm64" >&2; exit 2 ;;
	esac
	command -v "$qemu" >/dev/null || { echo "test-arm.sh: $qemu not found (Debian package qemu-user)" >&2; exit 1; }
	echo "go test linux/$goarch${goarm:+ GOARM=$goarm} under $qemu: ${#pkgs[@]} packages"
	start=$SECONDS
	# -short leaves out the clock's three minutes beside chronyd on a
	# jittery path (real time, the one test that asks): it runs natively in
	# CI's race step, and under qemu-user its timing would be the emulator's.
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go test -short -exec "$qemu" -timeout 20m "${pkgs[@]}"
	echo "linux/$goarch: $((SECONDS - start)) s"
done
