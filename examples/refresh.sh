#!/usr/bin/env bash
# refresh.sh: import the newest golden image build, roll the pool onto it, gc; safe to run often.
#
# Run by examples/systemd/vdipool-refresh.timer or examples/cron/vdipool-refresh.
# Settings come from the environment (the unit's Environment= or the cron line):
#   VDIPOOL_REFRESH_NAME   base name                      (default tiny)
#   VDIPOOL_REFRESH_IMAGE  the build's newest image, raw or qcow2, replaced atomically
#                          by the build (write elsewhere, then mv)
#                                                         (default /srv/images/tiny-latest.raw)
#   VDIPOOL_REFRESH_SPEC   pool spec with `version: latest` (default /etc/vdipool/pool.yaml)
#   VDIPOOL_REFRESH_KEEP   unreferenced versions gc keeps per name (default 2)
#   VDIPOOL_REFRESH_LOCK   lock file                      (default /run/lock/vdipool-refresh.lock)
#   VDIPOOL                the vdipool binary             (default vdipool from PATH)
#
# Cheap when nothing changed: an image whose content equals the newest version
# is not imported again (a timestamped version would otherwise turn every run
# into a new version and a rollout), and `vdipool apply` with nothing to do
# changes nothing and exits 0. A second copy started while one runs exits 0.
set -euo pipefail

name=${VDIPOOL_REFRESH_NAME:-tiny}
image=${VDIPOOL_REFRESH_IMAGE:-/srv/images/tiny-latest.raw}
spec=${VDIPOOL_REFRESH_SPEC:-/etc/vdipool/pool.yaml}
keep=${VDIPOOL_REFRESH_KEEP:-2}
lock=${VDIPOOL_REFRESH_LOCK:-/run/lock/vdipool-refresh.lock}
vdipool=${VDIPOOL:-vdipool}

log() { printf 'vdipool-refresh: %s\n' "$*" >&2; }

exec 9>"$lock"
if ! flock -n 9; then
	log "another refresh holds $lock; nothing to do"
	exit 0
fi

if [[ ! -f $image ]]; then
	log "no image at $image"
	exit 1
fi

# The newest version's image (base list is sorted oldest first, one object a line).
latest=$("$vdipool" base list "$name" -o json | sed -n 's/.*"location":"\([^"]*\)".*/\1/p' | tail -n 1)
same=1 # qemu-img compare: 0 identical, 1 different, more: error
if [[ -n $latest ]]; then
	# -U: running clones hold the base open (read-only); comparing it is safe.
	if qemu-img compare -q -U "$image" "$latest"; then same=0; else same=$?; fi
fi
if [[ $same -eq 0 ]]; then
	log "$image has the content of the newest version of $name; not importing"
elif [[ $same -eq 1 ]]; then
	# The version is the build's time, so re-running on the same file is a no-op import.
	version=$(date -u -r "$image" +%Y.%m.%d-%H%M%S)
	"$vdipool" base import "$name" "$image" --version "$version"
else
	log "qemu-img compare failed on $image and $latest"
	exit 1
fi

"$vdipool" apply "$spec"

# gc keeps what clones, rollback records and open derivations still need.
"$vdipool" gc --keep "$keep" --yes
