#!/usr/bin/env bash
# package.sh: builds the Debian packages (debian/, debhelper) from this checkout's files in
# build-deb/src and checks them with lintian; the .debs land in build-deb/. Prints their paths.
# usage: scripts/package.sh [--no-lintian]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/build-deb
cd "$ROOT"
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
# The files git knows, as they are in the work tree (uncommitted changes included).
git ls-files -z --cached --others --exclude-standard | grep -zv '^build' |
	xargs -0 cp --parents -t "$OUT/src" 2>/dev/null || true
rm -f "$OUT"/*.deb "$OUT"/*.changes "$OUT"/*.buildinfo
(cd "$OUT/src" && DEB_BUILD_OPTIONS="parallel=$(nproc) nocheck" dpkg-buildpackage -us -uc -b >"$OUT/build.log" 2>&1) ||
	{ tail -40 "$OUT/build.log"; exit 1; }
if [[ ${1:-} != --no-lintian ]]; then
	# Errors and warnings fail; informational tags are shown only with -I.
	lintian --fail-on error,warning "$OUT"/*.changes
fi
ls "$OUT"/*.deb
