#!/usr/bin/env bash
# test_ceph_up.sh: the throw-away Ceph of scripts/ceph-up.sh comes up, serves rbd create/snap/clone/ls, and goes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export VP_CEPH_DIR=${VP_CEPH_DIR:-/tmp/vp-ceph-up-test}
export VP_CEPH_PORT=${VP_CEPH_PORT:-3310}
R=(rbd -c "$VP_CEPH_DIR/ceph.conf" --id vdipool --keyring "$VP_CEPH_DIR/client.vdipool.keyring" -p rbd)

if [[ $(id -u) -ne 0 ]] && ! command -v ceph-mon >/dev/null; then
	skip "ceph packages are not installed and we are not root to install them"
	finish
fi
trap 'bash "$ROOT/scripts/ceph-down.sh" >/dev/null 2>&1' EXIT

t0=$SECONDS
if ! out=$(bash "$ROOT/scripts/ceph-up.sh" 2>&1); then
	if [[ $out == *"cannot install"* ]]; then
		skip "the Ceph packages cannot be installed here"
		finish
	fi
	bad "ceph-up.sh: $out"
	tail -20 "$VP_CEPH_DIR"/log/*.log 2>/dev/null | sed 's/^/    /'
	finish
fi
ok "ceph-up.sh in $((SECONDS - t0))s: $out"

check "conf has no key" bash -c "! grep -qi 'key *=' '$VP_CEPH_DIR/ceph.conf'"
check "client keyring is 0600" test "$(stat -c %a "$VP_CEPH_DIR/client.vdipool.keyring")" = 600
check "admin keyring is 0600" test "$(stat -c %a "$VP_CEPH_DIR/client.admin.keyring")" = 600
check "cephx is required" grep -q '^auth client required = cephx' "$VP_CEPH_DIR/ceph.conf"
expect "min compat client is mimic" 0 "mimic" -- \
	ceph -c "$VP_CEPH_DIR/ceph.conf" -n client.admin --keyring "$VP_CEPH_DIR/client.admin.keyring" \
	osd dump
check "rbd create" "${R[@]}" create --size 16M t-base
check "rbd snap create" "${R[@]}" snap create t-base@s1
check "rbd snap protect" "${R[@]}" snap protect t-base@s1
check "rbd clone" "${R[@]}" clone t-base@s1 t-clone
expect "rbd ls shows both" 0 "t-clone" -- "${R[@]}" ls
expect "the clone is format 2 on its parent" 0 "parent: rbd/t-base@s1" -- "${R[@]}" info t-clone
expect "the clone has object-map" 0 "object-map" -- "${R[@]}" info t-clone
expect "rbd children" 0 "rbd/t-clone" -- "${R[@]}" children t-base@s1
expect "the clone is a v2 clone" 0 "clone-child" -- "${R[@]}" info t-clone
# Under clone v2, unprotect is allowed while clones exist (measured): it is no guard, so the rbd
# plugin counts a snapshot's children itself before it removes one.
check "rbd snap unprotect (v2: allowed with a clone)" "${R[@]}" snap unprotect t-base@s1
check "rbd rm clone" "${R[@]}" rm --no-progress t-clone
check "rbd snap rm" "${R[@]}" snap rm --no-progress t-base@s1
check "rbd rm base" "${R[@]}" rm --no-progress t-base
check "the pool is empty" bash -c "[[ -z \$(${R[*]} ls) ]]"
check "a client without the key is refused" bash -c \
	"! timeout 20 rbd -c '$VP_CEPH_DIR/ceph.conf' --id vdipool --keyring /dev/null -p rbd ls >/dev/null 2>&1"

pidfiles=("$VP_CEPH_DIR"/*.pid)
pids=$(cat "${pidfiles[@]}" 2>/dev/null)
bash "$ROOT/scripts/ceph-down.sh" >/dev/null 2>&1
trap - EXIT
alive=0
for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
check "ceph-down.sh stops the daemons" test $alive -eq 0
check "ceph-down.sh removes the run dir" test ! -e "$VP_CEPH_DIR"
finish
