#!/usr/bin/env bash
# setup.sh: from a fresh Debian 12 machine to a running example pool: installs what vdipool needs,
# builds it, makes sure libvirtd + virtlogd run, builds and imports the tiny golden image, and
# applies examples/quickstart.yaml (5 linked clones that really boot), then shows its status.
# --package: builds and installs the Debian package instead, and uses the installed vdipool.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PACKAGE=0
if [[ ${1:-} == --package ]]; then
	# Install the Debian package (scripts/package.sh) instead of using a build in place: the
	# installed /usr/bin/vdipool finds its plugins and templates by itself.
	PACKAGE=1
	shift
fi
BUILD=${VP_BUILD_DIR:-$ROOT/build-release} # a release build: no tests, no test hooks
GUEST=${VP_GUEST_DIR:-$BUILD/guest}

say() { printf '\n==> %s\n' "$*"; }

if ((PACKAGE)); then
	SPEC=${1:-/usr/share/doc/vdipool/examples/quickstart.yaml}
	say "installing dependencies (apt-get)"
	bash scripts/deps.sh --package
	if [[ ${VP_PACKAGE_BUILT:-} != 1 ]]; then
		say "building the Debian packages (scripts/package.sh)"
		bash scripts/package.sh --no-lintian
	fi
	say "installing them (apt-get install ./build-deb/*.deb)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"$ROOT"/build-deb/vdipool_*.deb "$ROOT"/build-deb/libvdipool0_*.deb >/dev/null
	# The installed binary alone: no build tree on PATH, none of our environment variables.
	vdipool() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" /usr/bin/vdipool "$@"; }
	VDIPOOL=vdipool
else
	SPEC=${1:-examples/quickstart.yaml}
	VDIPOOL=$BUILD/bin/vdipool
	export VDIPOOL_PLUGIN_PATH=$BUILD/plugins
	export VDIPOOL_TEMPLATE_PATH=$ROOT/templates

	say "installing dependencies (apt-get)"
	bash scripts/deps.sh

	say "building vdipool"
	cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTS=OFF >/dev/null
	cmake --build "$BUILD" -j "$(nproc)" >/dev/null
fi

say "starting libvirtd and virtlogd (if not running)"
bash scripts/libvirt-up.sh

say "validating $SPEC"
"$VDIPOOL" validate "$SPEC"

say "building the tiny golden image from Debian packages"
bash scripts/build-guest-image.sh "$GUEST"

say "importing it as base 'tiny' (a no-op when this version is in the store already)"
version=$(cat "$GUEST/VERSION")
"$VDIPOOL" base import tiny "$GUEST/tiny.raw" --version "$version"

say "plan"
"$VDIPOOL" plan "$SPEC"

say "apply"
"$VDIPOOL" apply "$SPEC"

say "status"
"$VDIPOOL" status "$SPEC"
