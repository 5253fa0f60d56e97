#!/usr/bin/env bash
# ceph-up.sh: a throw-away single-node Ceph for tests: one mon on 127.0.0.1 (cephx), one memstore OSD,
# one pool initialised for RBD, clone format 2; everything (conf, keyrings, data, logs) under $VP_CEPH_DIR.
#
# Env: VP_CEPH_DIR (default /tmp/vp-ceph; an empty directory is taken), VP_CEPH_POOL (default rbd),
# VP_CEPH_PORT ("auto": a free pair; else the msgr2 port,
# default 3300; msgr1 uses it + 1). Writes $VP_CEPH_DIR/ceph.conf (0644, no key in it) and
# $VP_CEPH_DIR/client.vdipool.keyring (0600) for the client "vdipool" limited to that pool.
# No systemd: the daemons run as this user with their pid files in the run dir; ceph-down.sh stops them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${VP_CEPH_DIR:-/tmp/vp-ceph}
POOL=${VP_CEPH_POOL:-rbd}
PORT=${VP_CEPH_PORT:-3300}
# auto: a free pair of ports (msgr2, msgr1), so that clusters of runs side by side never meet.
if [[ $PORT == auto ]]; then
	PORT=$(python3 -c '
import socket
for p in range(20000, 40000, 2):
    ok = True
    for q in (p, p + 1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        s.close()
    if ok:
        print(p); break
') || PORT=
	[[ -n $PORT ]] || { echo "ceph-up: no free pair of ports" >&2; exit 1; }
fi
PORT1=$((PORT + 1))
WAIT=${VP_CEPH_WAIT:-60}
t0=$SECONDS

die() { echo "ceph-up: $*" >&2; exit 1; }

need=(ceph-mon ceph-osd ceph-common)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "ceph-up: installing ${missing[*]}"
	SUDO=()
	[[ $(id -u) -eq 0 ]] || SUDO=(sudo)
	DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || die "cannot install ${missing[*]}"
fi

if [[ -e $RUN/ceph.conf ]]; then
	bash "$ROOT/scripts/ceph-down.sh" >/dev/null 2>&1 || true
fi
# An existing directory is ours to use only when it is an earlier test cluster, or empty (mktemp -d).
if [[ -e $RUN ]] && [[ ! -e $RUN/.vp-ceph ]] && [[ -n $(ls -A "$RUN" 2>/dev/null) || ! -d $RUN ]]; then
	die "'$RUN' exists and is not a vdipool test cluster; not touching it"
fi
rm -rf "$RUN"
mkdir -p "$RUN"/{mon.a,osd.0,log}
chmod 0700 "$RUN"
touch "$RUN/.vp-ceph"
umask 077

fsid=$(cat /proc/sys/kernel/random/uuid)
CONF=$RUN/ceph.conf
cat >"$CONF" <<CONF
# A throw-away test cluster made by vdipool's scripts/ceph-up.sh; ceph-down.sh removes it.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$PORT,v1:127.0.0.1:$PORT1]
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
ms bind ipv4 = true
ms bind ipv6 = false
run dir = $RUN
pid file = $RUN/\$name.pid
admin socket = $RUN/\$name.asok
log file = $RUN/log/\$name.log
crash dir = $RUN/log
mon data = $RUN/\$name
osd data = $RUN/\$name
keyring = $RUN/\$name.keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
osd op num shards = 1
osd op num threads per shard = 2
# The auto default gives clone v1 on a fresh cluster; v2 clones need no snapshot protection.
rbd default clone format = 2
rbd default features = layering, exclusive-lock, object-map, fast-diff, deep-flatten
[client]
log file = /dev/null
admin socket =
CONF
chmod 0644 "$CONF"

auth() { ceph-authtool "$@" >/dev/null; }
auth --create-keyring "$RUN/mon.a.keyring" --gen-key -n mon. --cap mon 'allow *'
auth --create-keyring "$RUN/client.admin.keyring" --gen-key -n client.admin \
	--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *'
auth "$RUN/mon.a.keyring" --import-keyring "$RUN/client.admin.keyring"
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$PORT,v1:127.0.0.1:$PORT1]" \
	"$RUN/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$RUN/monmap" --keyring "$RUN/mon.a.keyring" ||
	die "mon mkfs failed"
ceph-mon -c "$CONF" -i a || die "the mon did not start; see $RUN/log/mon.a.log"

C=(ceph -c "$CONF" -n client.admin --keyring "$RUN/client.admin.keyring" --connect-timeout 10)
"${C[@]}" osd set-require-min-compat-client mimic --yes-i-really-mean-it >/dev/null 2>&1 ||
	"${C[@]}" osd set-require-min-compat-client mimic >/dev/null

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
id=$("${C[@]}" osd new "$osd_uuid")
[[ $id == 0 ]] || die "expected osd.0, got '$id'"
ceph-osd -c "$CONF" -i 0 --mkfs --mkkey --no-mon-config --osd-uuid "$osd_uuid" >"$RUN/log/osd-mkfs.log" 2>&1 ||
	die "osd mkfs failed; see $RUN/log/osd-mkfs.log"
"${C[@]}" auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
	-i "$RUN/osd.0.keyring" >/dev/null 2>&1 ||
	"${C[@]}" auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
		-i "$RUN/osd.0/keyring" >/dev/null
ceph-osd -c "$CONF" -i 0 || die "the osd did not start; see $RUN/log/osd.0.log"

"${C[@]}" osd pool create "$POOL" 8 8 >/dev/null
"${C[@]}" osd pool set "$POOL" size 1 --yes-i-really-mean-it >/dev/null 2>&1 || true
# No mgr (it is not needed for RBD and costs a core for seconds), so no `ceph pg stat`: the pool
# serves when an object can be written to it.
end=$((SECONDS + WAIT))
until timeout 5 rados -c "$CONF" -n client.admin --keyring "$RUN/client.admin.keyring" -p "$POOL" \
	put .vp-probe /dev/null >/dev/null 2>&1; do
	((SECONDS < end)) || die "pool '$POOL' does not serve after ${WAIT}s; see $RUN/log/osd.0.log"
	sleep 0.2
done
rados -c "$CONF" -n client.admin --keyring "$RUN/client.admin.keyring" -p "$POOL" rm .vp-probe
rbd -c "$CONF" -n client.admin --keyring "$RUN/client.admin.keyring" pool init "$POOL"

# The client vdipool uses: the rbd profile on this pool only; its key only in a 0600 keyring.
"${C[@]}" auth get-or-create client.vdipool mon 'profile rbd' osd "profile rbd pool=$POOL" \
	-o "$RUN/client.vdipool.keyring" >/dev/null
chmod 0600 "$RUN/client.vdipool.keyring" "$RUN/client.admin.keyring"
echo "ceph-up: cluster in $RUN (pool '$POOL', conf $CONF) up in $((SECONDS - t0))s"
