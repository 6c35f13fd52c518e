#!/usr/bin/env bash
# Renders the README's and docs' pictures of each view with totpsim
# snapshot, through periph's drivers on the emulated SSD1306 and e-paper
# controllers. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/img
mkdir -p "$out"
uri='otpauth://totp/ACME:alice@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DP&issuer=ACME'
short='otpauth://totp/ACME:al?secret=JBSWY3DPEHPK3PXP&issuer=ACME'
at=2026-11-27T10:00:27Z # 3 s before a step ends: the next code shows too
go build -o /tmp/totpsim-pictures ./cmd/totpsim
for panel in ssd1306-128x64 ssd1306-128x32 epd-250x122; do
	for view in code qr secret untrusted hidden; do
		u=$uri
		[[ $view == qr ]] && u=$short
		/tmp/totpsim-pictures snapshot --panel "$panel" --view "$view" --uri "$u" --at "$at" --scale 3 --out "$out/$panel-$view.png"
	done
done
for panel in ssd1306-128x64 epd-250x122; do
	/tmp/totpsim-pictures snapshot --panel "$panel" --view pairing --server totp.example.com --code K7WQM3XP \
		--scale 3 --out "$out/$panel-pairing.png"
	/tmp/totpsim-pictures snapshot --panel "$panel" --view offer --uri "$uri" --scale 3 --out "$out/$panel-offer.png"
	/tmp/totpsim-pictures snapshot --panel "$panel" --view takeover --uri 'otpauth://totp/Lobby:al?secret=JBSWY3DPEHPK3PXP&issuer=Lobby' \
		--scale 3 --out "$out/$panel-takeover.png"
done
echo "pictures in $out"
