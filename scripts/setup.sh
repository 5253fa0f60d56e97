#!/usr/bin/env bash
# setup.sh: from a fresh Debian 12 machine to a running example pool: installs what vdipool needs,
# builds it, makes sure libvirtd + virtlogd run, builds and imports the tiny golden image, and
# applies examples/quickstart.yaml (5 linked clones that really boot), then shows its status.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SPEC=${1:-examples/quickstart.yaml}
BUILD=${VP_BUILD_DIR:-$ROOT/build-release} # a release build: no tests, no test hooks
VDIPOOL=$BUILD/bin/vdipool
export VDIPOOL_PLUGIN_PATH=$BUILD/plugins
export VDIPOOL_TEMPLATE_PATH=$ROOT/templates

say() { printf '\n==> %s\n' "$*"; }

say "installing dependencies (apt-get)"
bash scripts/deps.sh

say "building vdipool"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null

say "starting libvirtd and virtlogd (if not running)"
bash scripts/libvirt-up.sh

say "validating $SPEC"
"$VDIPOOL" validate "$SPEC"

say "building the tiny golden image from Debian packages"
bash scripts/build-guest-image.sh "$BUILD/guest"

say "importing it as base 'tiny' (a no-op when this version is in the store already)"
version=$(cat "$BUILD/guest/VERSION")
"$VDIPOOL" base import tiny "$BUILD/guest/tiny.raw" --version "$version"

say "plan"
"$VDIPOOL" plan "$SPEC"

say "apply"
"$VDIPOOL" apply "$SPEC"

say "status"
"$VDIPOOL" status "$SPEC"
