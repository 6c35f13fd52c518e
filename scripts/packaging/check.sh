#!/usr/bin/env bash
# Checks the Debian packages scripts/package.sh built in dist/ (CI runs it
# from .ci/run; needs root for dpkg --root, lintian, shellcheck and
# systemd-analyze):
#   1. lintian, failing on errors and warnings;
#   2. the appliance .deb installed into a scratch root with dpkg --root
#      (maintainer scripts run chrootless with DPKG_ROOT, as Debian's
#      bootstrap tools do): binaries for the right CPU, units, conffiles,
#      the user totpbox in spi, gpio, i2c and tss, the state directory, the
#      service enabled; then a reinstall keeps an edited conffile and adds
#      nobody twice, and a purge removes the state but keeps the user;
#   3. the server .deb likewise: user totpserver, its data directory, its
#      configuration readable by it alone;
#   4. systemd-analyze verify and security on the units inside that root;
#   5. install-pi.sh --dry-run as an unprivileged user changes nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
	echo "check.sh: FAIL: $*" >&2
	exit 1
}
ok() { echo "  ok: $*"; }

appliance=$(find dist -name 'totpbox-appliance_*_arm64.deb' -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2)
appliance_armhf=$(find dist -name 'totpbox-appliance_*_armhf.deb' -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2)
server=$(find dist -name 'totpbox-server_*_amd64.deb' -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2)
[[ -n $appliance && -n $appliance_armhf && -n $server ]] || fail "no packages in dist/; run scripts/package.sh"

echo "lintian"
lintian --fail-on error,warning --display-info \
	"$appliance" "$appliance_armhf" dist/totpbox-server_*.deb 2>&1 |
	{ grep -v 'running with root privileges' || true; } | sed 's/^/  /'
ok "lintian: no errors or warnings"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# scratch DIR makes an empty root dpkg can install into, with a passwd and
# group holding root and, to check that an existing group is kept, gpio.
scratch() {
	local r=$1
	mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates" "$r/var/lib/dpkg/triggers" "$r/etc" "$r/var/log"
	: >"$r/var/lib/dpkg/status"
	printf 'root:x:0:0:root:/root:/bin/bash\n' >"$r/etc/passwd"
	printf 'root:*:19000:0:99999:7:::\n' >"$r/etc/shadow"
	printf 'root:x:0:\ngpio:x:997:\n' >"$r/etc/group"
	printf 'root:*::\ngpio:!::\n' >"$r/etc/gshadow"
}

# dpkg_root ROOT ARGS... runs dpkg on ROOT; its warnings (foreign
# architecture, dependencies not in the scratch root) go to a log shown
# only when it fails.
dpkg_root() {
	local r=$1
	shift
	if ! dpkg --root="$r" --force-script-chrootless --force-depends --force-architecture \
		--log=/dev/null "$@" >"$work/dpkg.log" 2>&1; then
		cat "$work/dpkg.log" >&2
		fail "dpkg --root $r $*"
	fi
}

# owner_mode PATH prints "uid:gid mode".
owner_mode() { stat -c '%u:%g %a' "$1"; }

# elf_machine FILE prints the ELF e_machine: 28 (ARM), b7 (AArch64), 3e (x86-64).
elf_machine() { od -An -tx1 -j18 -N1 "$1" | tr -d ' \n'; }

echo "appliance in a scratch root ($appliance)"
r="$work/appliance"
scratch "$r"
dpkg_root "$r" -i "$appliance"
for f in usr/bin/totpd usr/bin/totpctl; do
	[[ -x $r/$f && $(owner_mode "$r/$f") == "0:0 755" ]] || fail "/$f missing or not root-owned 0755: $(owner_mode "$r/$f" 2>&1)"
	[[ $(elf_machine "$r/$f") == b7 ]] || fail "/$f is not an arm64 binary"
done
ok "/usr/bin/totpd, /usr/bin/totpctl: arm64, 0755"
[[ $(owner_mode "$r/lib/systemd/system/totpd.service") == "0:0 644" ]] || fail "totpd.service missing"
cmp -s "$r/lib/systemd/system/totpd.service" scripts/packaging/systemd/totpd.service || fail "totpd.service differs from the source"
ok "/lib/systemd/system/totpd.service"
cmp -s "$r/etc/totpbox/totpd.yaml" configs/totpd.yaml || fail "/etc/totpbox/totpd.yaml differs from configs/totpd.yaml"
grep -qx /etc/totpbox/totpd.yaml "$r/var/lib/dpkg/info/totpbox-appliance.conffiles" || fail "totpd.yaml is not a conffile"
ok "/etc/totpbox/totpd.yaml, a conffile"
for f in usr/share/doc/totpbox-appliance/copyright usr/share/doc/totpbox-appliance/changelog.Debian.gz \
	usr/share/man/man8/totpd.8.gz usr/share/man/man1/totpctl.1.gz; do
	[[ -f $r/$f ]] || fail "/$f missing"
done
ok "copyright, changelog, man pages"

pw=$(grep '^totpbox:' "$r/etc/passwd") || fail "no user totpbox"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
((uid < 1000)) || fail "totpbox is not a system user (uid $uid)"
[[ $home == /var/lib/totpbox && $shell == /usr/sbin/nologin ]] || fail "totpbox: home $home, shell $shell"
[[ $(grep -c '^totpbox:' "$r/etc/group") == 1 ]] || fail "no group totpbox"
for g in spi gpio i2c tss; do
	line=$(grep "^$g:" "$r/etc/group") || fail "no group $g"
	[[ ,$(cut -d: -f4 <<<"$line"), == *,totpbox,* ]] || fail "totpbox not in group $g: $line"
done
[[ $(grep '^gpio:' "$r/etc/group" | cut -d: -f3) == 997 ]] || fail "the existing group gpio was changed"
ok "system user totpbox ($uid:$gid) in spi, gpio, i2c and tss; existing gpio kept"
[[ $(owner_mode "$r/var/lib/totpbox") == "$uid:$gid 700" ]] || fail "/var/lib/totpbox: $(owner_mode "$r/var/lib/totpbox")"
ok "/var/lib/totpbox, totpbox's, 0700"
link=$(readlink "$r/etc/systemd/system/multi-user.target.wants/totpd.service") || fail "totpd.service not enabled"
[[ $link == /lib/systemd/system/totpd.service ]] || fail "enable link points to $link"
ok "totpd.service enabled (multi-user.target.wants)"

echo "appliance: reinstall over an edited configuration, then purge"
echo "# edited by the admin" >>"$r/etc/totpbox/totpd.yaml"
dpkg_root "$r" --force-confold -i "$appliance"
grep -q '^# edited by the admin' "$r/etc/totpbox/totpd.yaml" || fail "reinstall replaced the edited conffile"
[[ $(grep -c '^totpbox:' "$r/etc/passwd") == 1 ]] || fail "reinstall added totpbox twice"
for g in spi gpio i2c tss; do
	[[ $(grep "^$g:" "$r/etc/group" | cut -d: -f4 | tr ',' '\n' | grep -cx totpbox) == 1 ]] || fail "totpbox listed twice in $g"
done
ok "edited conffile kept; user and groups not duplicated"
echo "secret" >"$r/var/lib/totpbox/vault.key"
dpkg_root "$r" -P totpbox-appliance
[[ ! -e $r/usr/bin/totpd && ! -e $r/var/lib/totpbox && ! -e $r/etc/totpbox/totpd.yaml ]] || fail "purge left files behind"
[[ ! -e $r/etc/systemd/system/multi-user.target.wants/totpd.service ]] || fail "purge left the enable link"
grep -q '^totpbox:' "$r/etc/passwd" || fail "purge removed the user"
ok "purge removes binaries, configuration, state and enable link; keeps the user"

echo "armhf appliance ($appliance_armhf)"
r="$work/armhf"
scratch "$r"
dpkg_root "$r" -i "$appliance_armhf"
[[ $(elf_machine "$r/usr/bin/totpd") == 28 ]] || fail "armhf totpd is not an ARM binary"
ok "ARM (GOARM=6) binaries"

echo "server in a scratch root ($server)"
s="$work/server"
scratch "$s"
dpkg_root "$s" -i "$server"
[[ $(elf_machine "$s/usr/bin/totpserver") == 3e ]] || fail "totpserver is not an x86-64 binary"
pw=$(grep '^totpserver:' "$s/etc/passwd") || fail "no user totpserver"
IFS=: read -r _ _ suid sgid _ _ _ <<<"$pw"
[[ $(owner_mode "$s/var/lib/totpserver") == "$suid:$sgid 700" ]] || fail "/var/lib/totpserver: $(owner_mode "$s/var/lib/totpserver")"
[[ $(owner_mode "$s/etc/totpbox/totpserver.yaml") == "0:$sgid 640" ]] || fail "totpserver.yaml: $(owner_mode "$s/etc/totpbox/totpserver.yaml")"
[[ -L $s/etc/systemd/system/multi-user.target.wants/totpserver.service ]] || fail "totpserver.service not enabled"
ok "totpserver, user totpserver, /var/lib/totpserver 0700, totpserver.yaml root:totpserver 0640, enabled"

echo "systemd units"
if systemd-analyze --version >/dev/null 2>&1; then
	# The units are checked inside the roots, where their binaries exist,
	# beside this machine's systemd units (the targets they name);
	# Documentation=man: pages are looked up there too.
	r="$work/verify"
	scratch "$r"
	dpkg_root "$r" -i "$appliance"
	for root in "$r" "$s"; do
		cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
	done
	for unit in "$r/lib/systemd/system/totpd.service" "$s/lib/systemd/system/totpserver.service"; do
		root=${unit%/lib/systemd/system/*}
		out=$(MANPATH="$root/usr/share/man" systemd-analyze verify --root="$root" "$unit" 2>&1) || fail "systemd-analyze verify $(basename "$unit"): $out"
		[[ -z $out ]] || fail "systemd-analyze verify $(basename "$unit"): $out"
		exposure=$(systemd-analyze security --offline=true --root="$root" "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		[[ -n $exposure ]] || fail "systemd-analyze security gave no exposure level for $(basename "$unit")"
		ok "$(basename "$unit"): verify clean; exposure $exposure (systemd-analyze security, 0 safe .. 10 unsafe)"
		awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }' || fail "$(basename "$unit") exposure $exposure is over 2.5"
	done
else
	echo "  SKIPPED: systemd-analyze is not installed here, the units were not verified" >&2
fi

echo "install-pi.sh --dry-run as nobody"
d="$work/dry"
mkdir -p "$d"
printf '[all]\n#dtparam=spi=on\n' >"$d/config.txt"
cp configs/totpd.yaml "$d/totpd.yaml"
chmod -R a+rX "$work"
before=$(cd "$d" && find . -printf '%p %s %T@\n' | sort && sha256sum ./*)
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$PATH" HOME=/nonexistent \
	TOTPBOX_BOOT_CONFIG="$d/config.txt" TOTPBOX_CONFIG="$d/totpd.yaml" TOTPBOX_SPIDEV="$d/spidev0.0" \
	TOTPBOX_TPM_DEVICE="$d/tpmrm0" \
	bash scripts/install-pi.sh --dry-run --deb "$appliance" --server https://totp.example.com --tpm 2>&1) ||
	fail "install-pi.sh --dry-run: $out"
after=$(cd "$d" && find . -printf '%p %s %T@\n' | sort && sha256sum ./*)
[[ $before == "$after" ]] || fail "install-pi.sh --dry-run changed files"
for want in "dtparam=spi=on" "dtoverlay=tpm-slb9670" "apt-get install" "server.url" "systemctl enable --now totpd.service"; do
	grep -qF -- "$want" <<<"$out" || fail "install-pi.sh --dry-run does not mention $want:"$'\n'"$out"
done
ok "runs unprivileged, prints SPI, TPM overlay, package, server and service steps, changes nothing"
