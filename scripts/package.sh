#!/usr/bin/env bash
# Builds the Debian packages into dist/ with nfpm:
#   totpbox-appliance  totpd, totpctl           armhf (ARMv6: every Pi), arm64
#   totpbox-server     totpserver               amd64, arm64
# The binaries come from scripts/build.sh, the package version from the
# same $VERSION (or `git describe`): v1.2.3 gives 1.2.3-1, a commit
# between tags 1.2.3+4.gabc1234-1, an untagged commit
# 0.0.0+git<commits>.<hash>-1.
#
# nfpm is $NFPM when set, else github.com/goreleaser/nfpm/v2 v2.45.2 built
# into a temporary directory (nothing is added to go.mod).
#
# Usage: scripts/package.sh [appliance|server]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."

nfpm_module=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
maintainer="totpbox developers <dev@totpbox.org>"

VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
export VERSION

# debian_version VERSION prints the upstream part of the package version.
debian_version() {
	local v=${1#v} dirty=""
	if [[ $v == *-dirty ]]; then
		v=${v%-dirty}
		dirty=".dirty"
	fi
	if [[ $v =~ ^([0-9][0-9A-Za-z.~]*)-([0-9]+)-(g[0-9a-f]+)$ ]]; then
		echo "${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.${BASH_REMATCH[3]}$dirty"
	elif [[ $v =~ ^[0-9a-f]{7,40}$ ]]; then
		echo "0.0.0+git$(git rev-list --count HEAD 2>/dev/null || echo 0).$v$dirty"
	elif [[ $v =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
		echo "$v${dirty:++dirty}"
	else
		echo "0.0.0+${v//[^0-9A-Za-z.]/.}$dirty"
	fi
}

DEB_VERSION=$(debian_version "$VERSION")
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

if [[ -z ${NFPM:-} ]]; then
	echo "installing nfpm ($nfpm_module)"
	GOBIN="$STAGE/bin" GOFLAGS=-mod=mod go install "$nfpm_module"
	NFPM="$STAGE/bin/nfpm"
fi

# stage writes the gzipped man pages and each package's changelog.
stage() {
	local page pkg date
	for page in scripts/packaging/man/*; do
		gzip -9nc "$page" >"$STAGE/$(basename "$page").gz"
	done
	date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
	for pkg in totpbox-appliance totpbox-server; do
		printf '%s (%s-1) unstable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
			"$pkg" "$DEB_VERSION" "$VERSION" "$maintainer" "$date" |
			gzip -9n >"$STAGE/$pkg.changelog.Debian.gz"
	done
}

# package KIND DEB_ARCH GO_TARGET builds one .deb. nfpm expands the
# environment only in some fields, so the configuration's ${VAR}s are
# filled in here.
package() {
	local kind=$1 deb_arch=$2 go_target=$3 config
	config="$STAGE/nfpm-$kind-$deb_arch.yaml"
	sed -e "s|\${DEB_ARCH}|$deb_arch|g" -e "s|\${GO_TARGET}|$go_target|g" \
		-e "s|\${DEB_VERSION}|$DEB_VERSION|g" -e "s|\${STAGE}|$STAGE|g" \
		"scripts/packaging/nfpm-$kind.yaml" >"$config"
	# shellcheck disable=SC2016 # a literal ${
	if grep -nF '${' "$config"; then
		echo "package.sh: unfilled variables in scripts/packaging/nfpm-$kind.yaml" >&2
		exit 1
	fi
	"$NFPM" package --packager deb --config "$config" --target dist/ | sed 's/^/  /'
}

kinds=("$@")
((${#kinds[@]})) || kinds=(appliance server)
stage
for kind in "${kinds[@]}"; do
	case $kind in
	appliance)
		scripts/build.sh totpd:linux/arm/6 totpd:linux/arm64 totpctl:linux/arm/6 totpctl:linux/arm64
		package appliance armhf linux-armv6
		package appliance arm64 linux-arm64
		;;
	server)
		scripts/build.sh totpserver:linux/amd64 totpserver:linux/arm64
		package server amd64 linux-amd64
		package server arm64 linux-arm64
		;;
	*)
		echo "package.sh: unknown package $kind (want appliance or server)" >&2
		exit 2
		;;
	esac
done
ls -l dist/*.deb
