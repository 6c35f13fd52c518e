#!/usr/bin/env bash
# Installs the totpbox appliance on Raspberry Pi OS: enables SPI, installs
# the totpbox-appliance package, optionally points totpd at a registration
# server, and starts the service. Safe to run again: each step checks
# first and does only what is missing.
#
# Usage: sudo scripts/install-pi.sh [--dry-run] [--deb FILE] [--server URL] [--tpm] [--no-start]
#   --dry-run     print every action instead of doing it (no root needed)
#   --deb FILE    the package to install; default: the newest
#                 dist/totpbox-appliance_*_<this machine's architecture>.deb
#   --server URL  the registration server totpd syncs with, written to
#                 /etc/totpbox/totpd.yaml as server.url (checked with
#                 totpd config check before it is kept)
#   --tpm         an SLB9670 TPM module is fitted on SPI0 CE1 (docs/hardware.md):
#                 enable dtoverlay=tpm-slb9670 so /dev/tpmrm0 appears (after a
#                 reboot), and totpd (secrets: auto) seals its secrets to it.
#                 Without --tpm the overlay is still enabled when the kernel
#                 already shows a TPM (TOTPBOX_TPM_DEVICE, /dev/tpmrm0); an SPI
#                 module cannot be seen before its overlay is loaded.
#   --no-start    install and enable, but do not start totpd now
#
# The environment may move the files it touches (for tests):
# TOTPBOX_BOOT_CONFIG (default /boot/firmware/config.txt, or
# /boot/config.txt on older releases), TOTPBOX_CONFIG
# (/etc/totpbox/totpd.yaml), TOTPBOX_SPIDEV (/dev/spidev0.0),
# TOTPBOX_TPM_DEVICE (/dev/tpmrm0).
set -euo pipefail

dry_run=0
deb=""
server=""
start=1
tpm=0
need_reboot=0
while (($#)); do
	case $1 in
	--dry-run) dry_run=1 ;;
	--deb)
		deb=${2:?--deb needs a file}
		shift
		;;
	--server)
		server=${2:?--server needs a URL}
		shift
		;;
	--no-start) start=0 ;;
	--tpm) tpm=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "install-pi.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done

say() { printf '==> %s\n' "$*"; }

# run CMD... runs a command that changes the system, or prints it in a dry
# run.
run() {
	if ((dry_run)); then
		printf 'would run:'
		printf ' %q' "$@"
		printf '\n'
	else
		"$@"
	fi
}

if ((!dry_run)) && [[ $(id -u) != 0 ]]; then
	echo "install-pi.sh: run as root (sudo), or with --dry-run to see what it would do" >&2
	exit 1
fi

boot_config=${TOTPBOX_BOOT_CONFIG:-}
if [[ -z $boot_config ]]; then
	boot_config=/boot/firmware/config.txt
	[[ -e $boot_config || ! -e /boot/config.txt ]] || boot_config=/boot/config.txt
fi
config=${TOTPBOX_CONFIG:-/etc/totpbox/totpd.yaml}
spidev=${TOTPBOX_SPIDEV:-/dev/spidev0.0}

# 1. SPI.
if [[ -e $spidev ]]; then
	say "SPI is on ($spidev)"
elif command -v raspi-config >/dev/null; then
	say "enabling SPI with raspi-config"
	run raspi-config nonint do_spi 0
else
	if grep -qE '^[[:space:]]*dtparam=spi=on' "$boot_config" 2>/dev/null; then
		say "SPI is enabled in $boot_config (active after a reboot)"
	elif grep -qE '^[[:space:]]*#[[:space:]]*dtparam=spi=on' "$boot_config" 2>/dev/null; then
		say "enabling SPI in $boot_config"
		run sed -i -E 's/^[[:space:]]*#[[:space:]]*(dtparam=spi=on)/\1/' "$boot_config"
	else
		say "enabling SPI in $boot_config"
		if ((dry_run)); then
			echo "would append: dtparam=spi=on >> $boot_config"
		else
			printf '\n# totpbox: the panel is on SPI0\ndtparam=spi=on\n' >>"$boot_config"
		fi
	fi
	if command -v dtparam >/dev/null; then
		run dtparam spi=on
	fi
	if ((!dry_run)) && [[ ! -e $spidev ]]; then
		need_reboot=1
	fi
fi

# 1b. The TPM module (Infineon SLB9670 on SPI0 CE1).
tpm_device=${TOTPBOX_TPM_DEVICE:-/dev/tpmrm0}
if [[ -e $tpm_device ]]; then
	say "TPM is present ($tpm_device): totpd seals its secrets to it"
elif ((tpm)); then
	if grep -qE '^[[:space:]]*dtoverlay=tpm-slb9670' "$boot_config" 2>/dev/null; then
		say "the TPM overlay is enabled in $boot_config (active after a reboot)"
	else
		say "enabling the TPM overlay in $boot_config"
		if ((dry_run)); then
			echo "would append: dtoverlay=tpm-slb9670 >> $boot_config"
		else
			printf '\n# totpbox: the SLB9670 TPM module on SPI0 CE1\ndtoverlay=tpm-slb9670\n' >>"$boot_config"
		fi
	fi
	((dry_run)) || need_reboot=1
else
	say "no TPM ($tpm_device): totpd keeps its secrets in a software key file; with a module fitted, run again with --tpm"
fi

# 2. The package.
if [[ -z $deb ]]; then
	arch=$(dpkg --print-architecture 2>/dev/null || echo armhf)
	here=$(cd "$(dirname "$0")/.." && pwd)
	for f in "$here"/dist/totpbox-appliance_*_"$arch".deb; do
		[[ -f $f && ( -z $deb || $f -nt $deb ) ]] && deb=$f
	done
	if [[ -z $deb ]]; then
		echo "install-pi.sh: no dist/totpbox-appliance_*_$arch.deb; build one with scripts/package.sh or pass --deb FILE" >&2
		exit 1
	fi
fi
if [[ ! -f $deb ]]; then
	echo "install-pi.sh: $deb: no such file" >&2
	exit 1
fi
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
want=$(dpkg-deb -f "$deb" Version)
have=$(dpkg-query -W -f '${db:Status-Abbrev} ${Version}' totpbox-appliance 2>/dev/null || true)
if [[ $have == "ii  $want" ]]; then
	say "totpbox-appliance $want is installed"
else
	say "installing totpbox-appliance $want from $deb"
	# The local configuration is kept (--force-confold): a newer default
	# lands beside it as totpd.yaml.dpkg-dist.
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$deb"
fi

# 3. The server address.
changed=0
if [[ -n $server ]]; then
	if grep -qE "^[[:space:]]+url:[[:space:]]*\"?${server//./\\.}\"?[[:space:]]*$" "$config" 2>/dev/null &&
		grep -q '^server:' "$config"; then
		say "totpd already syncs with $server"
	else
		say "pointing totpd at $server in $config"
		if ((dry_run)); then
			echo "would set server.url: \"$server\" in $config, after totpd config check accepts it"
		else
			tmp=$(mktemp "$config.XXXXXX")
			trap 'rm -f "$tmp"' EXIT
			if grep -q '^server:' "$config"; then
				awk -v url="$server" '
					/^server:/ { print; print "  url: \"" url "\""; in_server = 1; next }
					in_server && /^[[:space:]]+url:/ { next }
					/^[^[:space:]#]/ { in_server = 0 }
					{ print }' "$config" >"$tmp"
			else
				cat "$config" >"$tmp"
				printf '\nserver:\n  # The registration server totpd syncs with.\n  url: "%s"\n' "$server" >>"$tmp"
			fi
			if ! totpd config check "$tmp" >/dev/null; then
				echo "install-pi.sh: totpd refuses server.url (above); $config is unchanged" >&2
				exit 1
			fi
			chmod --reference="$config" "$tmp"
			mv "$tmp" "$config"
			trap - EXIT
			changed=1
		fi
	fi
fi

# 4. The service.
if ((need_reboot)); then
	say "$spidev appears after a reboot: sudo reboot (totpd.service is enabled and starts then)"
elif ((start)); then
	if ((changed)); then
		say "restarting totpd"
		run systemctl restart totpd.service
	elif systemctl is-active --quiet totpd.service 2>/dev/null; then
		say "totpd is running"
	else
		say "starting totpd"
		run systemctl enable --now totpd.service
	fi
fi
say "done: journalctl -u totpd -f shows its log"
