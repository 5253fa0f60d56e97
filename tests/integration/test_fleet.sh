#!/usr/bin/env bash
# test_fleet.sh: one pool over three real hosts. Each host is an sshd on its own loopback port with
# its own host key and user, in its own mount namespace whose /var/lib/vdipool is that host's store;
# libvirt is reached as qemu+libssh2://USER@127.0.0.1:PORT/session, whose session daemon inherits
# the namespace. The controller (this script's vdipool) runs in a namespace of its own too, so the
# only way a base reaches a host is vdipool pushing it over SFTP.
# Checked (h2's SSH compressed, ssh.compress): plan per host with the bytes to push; apply pushes the base to every host (hash checked
# there), places clones by spread, and real guests boot on each host under TCG; a second apply does
# nothing; status per host; a host whose key is refused is reported, its clones are left alone (not
# recreated elsewhere), the rest is applied and apply exits 1 naming it; the host back, the next
# apply finishes; scaling down removes from the fullest host first; base verify hashes each host's
# copy on the host and catches a tampered one; gc on one host keeps what that host's clones use and
# leaves other hosts' bases alone; destroy clears every host.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) -eq 0 ]] || { skip "test_fleet needs root (users, namespaces)"; finish; }
command -v unshare >/dev/null || { skip "no unshare"; finish; }

GUEST=${VP_GUEST_DIR:-$BUILD/guest}
POOL=fl$$
T=$(mktemp -d /var/tmp/vp-fleet-XXXXXX)
chmod 755 "$T"
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_FLEET_PORT:-22600} VP_TEST_HOSTS_USER=vpfl
RUN=$VP_TEST_HOSTS_DIR
SPEC=$T/pool.yaml
CTL=$T/ctl   # the controller's /var/lib/vdipool
mkdir -p "$CTL" "$T/templates"

ctl() { # runs the CLI as the controller: its own /var/lib/vdipool
	unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/vdipool && shift && exec "$@"' \
		_ "$CTL" "$CLI" "$@"
}

cleanup() {
	ctl destroy -q --yes "$SPEC" >/dev/null 2>&1
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

bash "$ROOT/scripts/build-guest-image.sh" "$GUEST" >/dev/null 2>&1 || { bad "the guest image builds"; finish; }
bash "$ROOT/scripts/test-hosts-up.sh" 3 >"$T/hosts-up.log" 2>&1 || {
	bad "three test hosts come up"
	tail -20 "$T/hosts-up.log"
	finish
}
mapfile -t HOSTS <"$RUN/hosts" # "i user port pid uri"

# The clones' serial consoles go to the host's store, where the test can read them.
sed "s#/var/log/libvirt/qemu/serial.log#/var/lib/vdipool/logs/serial.log#" \
	"$ROOT/templates/server.xml" >"$T/templates/fleet.xml"
export VDIPOOL_TEMPLATE_PATH=$T/templates:$VDIPOOL_TEMPLATE_PATH
for line in "${HOSTS[@]}"; do
	read -r i user port _ <<<"$line"
	install -d -o "$user" -m 0755 "$RUN/host$i/store/logs"
done

uri() { # uri I [KNOWN_HOSTS]: the host's libvirt URI, with another known_hosts file if given
	local u
	read -r _ _ _ _ u <<<"${HOSTS[$(($1 - 1))]}"
	echo "${u/known_hosts=$RUN\/known_hosts/known_hosts=${2:-$RUN/known_hosts}}"
}

spec() { # spec COUNT [KNOWN_HOSTS_OF_HOST3]
	{
		cat <<EOF
pool: { name: $POOL }
base: { name: tiny, version: "${BASEV:-latest}" }
storage:
  tiers: [ { name: local, driver: dir, path: /var/lib/vdipool/t } ]
clones: { count: $1, name: "$POOL-{index:02}" }
domain: { template: fleet, memory: 128M, vcpus: 1, network: none, start: true, accel: tcg }
rollout: { shutdown_timeout: 5s }
placement: { policy: spread }
distribution: { max_parallel_hosts: 2 }
hosts:
EOF
		for n in 1 2 3; do
			local kh=$RUN/known_hosts user port
			[[ $n == 3 ]] && kh=${2:-$kh}
			read -r _ user port _ _ <<<"${HOSTS[$((n - 1))]}"
			cat <<EOF
  - name: h$n
    uri: "$(uri "$n" "$kh")"
    ssh: { user: $user, port: $port, host: 127.0.0.1, identity: $RUN/id_ed25519, known_hosts: $kh, compress: $([[ $n == 2 ]] && echo true || echo false) }
EOF
		done
	} >"$SPEC"
}

host_store() { echo "$RUN/host$1/store/t"; }
clones_on() { # clones_on I: this pool's deltas in host I's store
	ls "$(host_store "$1")/deltas/$POOL" 2>/dev/null | grep -c '\.qcow2$'
}
ready_on() { # ready_on I NAME: the clone's serial log on host I shows a boot that got READY
	local log=$RUN/host$1/store/logs/$2-serial.log end=$((SECONDS + TIMEOUT))
	while ((SECONDS < end)); do
		grep -a -q '^VDIPOOL-READY' "$log" 2>/dev/null && return 0
		sleep 0.5
	done
	echo "    $2 on host $1: no READY in ${TIMEOUT}s"
	tail -5 "$log" 2>/dev/null | sed 's/^/    /'
	return 1
}

ctl --root /var/lib/vdipool/t base import tiny "$GUEST/tiny.raw" --version 1 >/dev/null ||
	{ bad "the base imports on the controller"; finish; }
sha1=$(ctl --root /var/lib/vdipool/t base list tiny -o json | grep -o '"sha256":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)

echo "== plan and apply over three hosts"
spec 6
out=$(ctl plan "$SPEC" 2>&1)
check "plan shows three hosts" grep -q "on 3 hosts (placement: spread)" <<<"$out"
for n in 1 2 3; do
	check "plan gives h$n two new clones and a base to push" \
		grep -q "^Host h$n (.*): 2 clones (2 new, 0 to remove), push tiny@1 first" <<<"$out"
done
check "the base is on no host before apply" bash -c "! ls '$RUN'/host*/store/t/bases/tiny/1 2>/dev/null"
expect "apply over three hosts exits 0" 0 "Applied 6 clones" -- ctl apply "$SPEC"
for n in 1 2 3; do
	img=$(host_store "$n")/bases/tiny/1/disk.qcow2
	check "h$n received the base, byte for byte" test "$(sha256sum <"$img" | cut -d' ' -f1)" == "$sha1"
	check "h$n's copy is read-only" test "$(stat -c %a "$img")" == 444
	check "h$n holds two clones" test "$(clones_on "$n")" == 2
done
for n in 1 2 3; do
	for c in $(ls "$(host_store "$n")/deltas/$POOL" | sed -n 's/\.qcow2$//p'); do
		check "$c boots to READY on h$n" ready_on "$n" "$c"
	done
done
expect "a second apply has nothing to do" 0 "nothing to do" -- ctl apply "$SPEC"
json_ok() { # json_ok PYTHON-ASSERTION JSON: the assertion holds for the parsed document d
	python3 -c 'import json, sys; d = json.loads(sys.argv[2]); assert eval(sys.argv[1]), d' "$1" "$2"
}
check "plan -o json: one object per host, two clones each, nothing pending" \
	json_ok '[h["clones"] for h in d["hosts"]] == [2, 2, 2] and not d["changes_pending"]' "$(ctl plan -o json "$SPEC")"
check "status -o json: every host reachable, two running on each" \
	json_ok 'all(h["reachable"] and h["running"] == 2 for h in d["hosts"])' "$(ctl status -o json "$SPEC")"
out=$(ctl status "$SPEC" 2>&1)
for n in 1 2 3; do
	check "status has h$n's line" grep -q "^  h$n *2 clones: 2 running" <<<"$out"
done

c2=$(ls "$(host_store 2)/deltas/$POOL" | sed -n '1s/\.qcow2$//p')
old_ino=$(stat -c %i "$(host_store 2)/deltas/$POOL/$c2.qcow2")
expect "reset of a clone on h2 gives it a fresh delta there" 0 "Reset 1 clone" -- ctl reset "$SPEC" "$c2"
check "$c2's delta on h2 is a new file" test "$(stat -c %i "$(host_store 2)/deltas/$POOL/$c2.qcow2")" != "$old_ino"
expect "reset of a clone the pool does not have is refused" 2 "'nosuch' is not a clone of pool" -- ctl reset "$SPEC" nosuch

echo "== a host that cannot be reached"
: >"$T/empty_known_hosts"
spec 9 "$T/empty_known_hosts"
out=$(ctl plan "$SPEC" 2>&1)
check "plan reports h3 unreachable and leaves its clones alone" grep -q "^Host h3 (.*): UNREACHABLE, 2 clones left alone" <<<"$out"
expect "apply exits 1 naming the unreachable host" 1 "host 'h3' is unreachable" -- ctl apply "$SPEC"
check "h1 and h2 got the new clones (3 + 4)" test "$(($(clones_on 1) + $(clones_on 2)))" == 7
check "h3's clones are not made elsewhere" test "$(clones_on 3)" == 2
spec 9
expect "with h3 back there is nothing to do: the count was met without it" 0 "nothing to do" -- ctl apply "$SPEC"
check "nine clones in all" test "$(($(clones_on 1) + $(clones_on 2) + $(clones_on 3)))" == 9

echo "== scaling down removes from the fullest host first"
before=("$(clones_on 1)" "$(clones_on 2)" "$(clones_on 3)")
spec 8
expect "apply scales down by one" 0 "Applied" -- ctl apply "$SPEC"
after=("$(clones_on 1)" "$(clones_on 2)" "$(clones_on 3)")
max=0
for n in 0 1 2; do ((before[n] > max)) && max=${before[n]}; done
removed_from=-1
for n in 0 1 2; do ((after[n] == before[n] - 1)) && removed_from=$n; done
check "one clone went, from a host that had the most (${before[*]} -> ${after[*]})" \
	test "$removed_from" -ge 0 -a "${before[$removed_from]:-0}" == "$max"

echo "== a rollout while h3 cannot be reached, gc per host, h3 back"
bash "$ROOT/scripts/build-guest-image.sh" --marker "VDIPOOL-BASE v2 fleet" "$GUEST-v2" >/dev/null 2>&1 ||
	{ bad "the v2 guest image builds"; finish; }
ctl --root /var/lib/vdipool/t base import tiny "$GUEST-v2/tiny.raw" --version 2 >/dev/null
backs() { # backs I: the base versions host I's deltas back onto, sorted and unique
	for d in "$(host_store "$1")/deltas/$POOL"/*.qcow2; do
		qemu-img info -U --output=json "$d" | grep -o '"backing-filename": "[^"]*"' | grep -o 'tiny/[0-9]*'
	done | sort -u | tr '\n' ' '
}
spec 8 "$T/empty_known_hosts"
expect "the rollout to v2 exits 1 naming h3" 1 "host 'h3' is unreachable" -- ctl apply "$SPEC"
check "h1's clones are on v2" test "$(backs 1)" == "tiny/2 "
check "h2's clones are on v2" test "$(backs 2)" == "tiny/2 "
check "h3's clones are still on v1" test "$(backs 3)" == "tiny/1 "
# A version no clone uses, on h1 and h3 only: gc may take it where nothing needs it.
ctl --root /var/lib/vdipool/t base import tiny "$GUEST/tiny.raw" --version 9 >/dev/null
BASEV=2
for n in 1 3; do
	read -r _ user port _ _ <<<"${HOSTS[$((n - 1))]}"
	ctl --root /var/lib/vdipool/t base push tiny@9 --to "$user@127.0.0.1:$port" --identity "$RUN/id_ed25519" \
		--known-hosts "$RUN/known_hosts" --remote-root /var/lib/vdipool/t >/dev/null || bad "push tiny@9 to h$n"
done
spec 8 "$T/empty_known_hosts"
expect "gc --keep 0 works on the hosts it reaches, exit 1 naming h3" 1 "host 'h3'" -- \
	ctl --root /var/lib/vdipool/t gc --keep 0 --yes "$SPEC"
check "gc removed the unused v9 from h1" test ! -e "$(host_store 1)/bases/tiny/9"
check "h1 keeps v1: its clones record it as the version a rollback returns to" test -e "$(host_store 1)/bases/tiny/1/disk.qcow2"
check "h3's v1, which its clones run on, is untouched" test -e "$(host_store 3)/bases/tiny/1/disk.qcow2"
check "h3's v9 is untouched (h3 was not reached)" test -e "$(host_store 3)/bases/tiny/9/disk.qcow2"
check "the controller keeps every version (it cannot see h3's clones)" test -e "$CTL/t/bases/tiny/9/disk.qcow2"
spec 8
expect "with h3 back, apply finishes the rollout there" 0 "Applied" -- ctl apply "$SPEC"
check "h3 received v2" test -e "$(host_store 3)/bases/tiny/2/disk.qcow2"
check "h3's clones are on v2" test "$(backs 3)" == "tiny/2 "
for c in $(ls "$(host_store 3)/deltas/$POOL" | sed -n 's/\.qcow2$//p'); do
	check "$c boots v2 on h3" bash -c "end=\$((SECONDS + $TIMEOUT)); while ((SECONDS < end)); do grep -a -q 'VDIPOOL-BASE-MARKER: VDIPOOL-BASE v2 fleet' '$RUN/host3/store/logs/$c-serial.log' && exit 0; sleep 0.5; done; exit 1"
done
expect "gc --keep 0 with every host reachable" 0 "removed" -- ctl --root /var/lib/vdipool/t gc --keep 0 --yes "$SPEC"
check "now v9 is gone from h3" test ! -e "$(host_store 3)/bases/tiny/9"
check "and from the controller" test ! -e "$CTL/t/bases/tiny/9"
check "h3 keeps v1 (its clones' rollback version)" test -e "$(host_store 3)/bases/tiny/1/disk.qcow2"
check "v2 stays on every host" test -e "$(host_store 1)/bases/tiny/2/disk.qcow2" -a -e "$(host_store 2)/bases/tiny/2/disk.qcow2" -a -e "$(host_store 3)/bases/tiny/2/disk.qcow2"

echo "== base verify on every host"
expect "base verify --spec checks each host's copy on the host" 0 "on host h3: ok" -- \
	ctl --root /var/lib/vdipool/t base verify tiny@2 --spec "$SPEC"
img=$(host_store 2)/bases/tiny/2/disk.qcow2
chmod u+w "$img" && printf 'X' | dd of="$img" bs=1 seek=70000 conv=notrunc status=none && chmod 0444 "$img"
expect "a tampered copy on h2 is caught (exit 1)" 1 "on host h2" -- \
	ctl --root /var/lib/vdipool/t base verify tiny@2 --spec "$SPEC"

echo "== destroy"
expect "destroy removes the pool on every host" 0 "Destroyed" -- ctl destroy --yes "$SPEC"
for n in 1 2 3; do
	check "h$n holds no clone of the pool" test "$(clones_on "$n")" == 0
done
finish
