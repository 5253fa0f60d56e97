#!/usr/bin/env bash
# test_fleet_faults.sh: hosts that stop in the middle of the work.
# 1. A host stopped DURING apply (its sshd, session libvirtd and every process of its user killed,
#    as if it lost power, once some of its clones exist): apply exits 1 naming it while the other
#    hosts are complete; an apply while it is down leaves its clones alone (none made elsewhere);
#    the host back, the next apply finishes the job: exactly the wanted clones, each on one host.
# 2. A base push cut mid-transfer (the host stopped while the fleet pushes a 1 GiB-of-data base):
#    the next apply resumes it (sends less than the image's data, says how much was resumed) and
#    the host's copy has the manifest's SHA-256.
# Hosts are scripts/test-hosts-up.sh's (see test_fleet.sh); one is stopped with
# `test-hosts-down.sh --host 3` and brought back with `test-hosts-up.sh --restart 3`.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) -eq 0 ]] || { skip "test_fleet_faults needs root (users, namespaces)"; finish; }
command -v unshare >/dev/null || { skip "no unshare"; finish; }

POOL=ff$$
T=$(mktemp -d /var/tmp/vp-faults-XXXXXX)
chmod 755 "$T"
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_FAULTS_PORT:-22840} VP_TEST_HOSTS_USER=vpff
RUN=$VP_TEST_HOSTS_DIR
SPEC=$T/pool.yaml
CTL=$T/ctl
mkdir -p "$CTL"

ctl() { # the controller, in its own mount namespace; never hands a lock fd to what it starts
	unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/vdipool && shift && exec "$@"' \
		_ "$CTL" "$CLI" "$@" 9>&-
}
cleanup() {
	[[ -n ${APID:-} ]] && kill "$APID" 2>/dev/null
	ctl destroy -q --yes "$SPEC" >/dev/null 2>&1
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

bash "$ROOT/scripts/test-hosts-up.sh" 3 >"$T/hosts-up.log" 2>&1 9>&- || {
	bad "three test hosts come up"
	tail -20 "$T/hosts-up.log"
	finish
}
mapfile -t HOSTS <"$RUN/hosts" # "i user port pid uri"

spec() { # spec COUNT BASE
	{
		cat <<EOF
pool: { name: $POOL }
base: { name: $2, version: "1" }
storage:
  tiers: [ { name: local, driver: dir, path: /var/lib/vdipool/t } ]
clones: { count: $1, name: "$POOL-{index:02}" }
domain: { template: server, memory: 64M, vcpus: 1, network: none, start: false, accel: tcg }
placement: { policy: spread, cpu_overcommit: 16, memory_overcommit: 4 }
distribution: { max_parallel_hosts: 3 }
hosts:
EOF
		for n in 1 2 3; do
			read -r _ user port _ uri <<<"${HOSTS[$((n - 1))]}"
			cat <<EOF
  - name: h$n
    uri: "$uri"
    ssh: { user: $user, port: $port, host: 127.0.0.1, identity: $RUN/id_ed25519, known_hosts: $RUN/known_hosts }
EOF
		done
	} >"$SPEC"
}
store() { echo "$RUN/host$1/store/t"; }
clones_on() { ls "$(store "$1")/deltas/$POOL" 2>/dev/null | grep -c '\.qcow2$'; }
uri_of() { read -r _ _ _ _ u <<<"${HOSTS[$(($1 - 1))]}"; echo "$u"; }
domains_on() { # domains_on I: this pool's domains defined on host I
	virsh -c "$(uri_of "$1")" list --all --name 2>/dev/null | grep -c "^$POOL-"
}
host_down() { bash "$ROOT/scripts/test-hosts-down.sh" --host "$1" >>"$T/hosts-up.log" 2>&1 9>&-; }
host_up() { bash "$ROOT/scripts/test-hosts-up.sh" --restart "$1" >>"$T/hosts-up.log" 2>&1 9>&-; }

qemu-img create -q -f qcow2 "$T/small.qcow2" 1G
ctl --root /var/lib/vdipool/t base import small "$T/small.qcow2" --version 1 >/dev/null ||
	{ bad "the base imports on the controller"; finish; }

echo "== a host stopped during apply"
spec 30 small
ctl apply "$SPEC" >"$T/apply1.log" 2>&1 &
APID=$!
end=$((SECONDS + 120))
while ((SECONDS < end)) && kill -0 "$APID" 2>/dev/null && (($(clones_on 3) < 2)); do sleep 0.05; done
if kill -0 "$APID" 2>/dev/null; then
	host_down 3
	made=$(clones_on 3)
	ok "h3 stopped during apply, with $made of its clones made"
else
	bad "h3 stopped during apply (the apply ended before h3 had clones: $(clones_on 3))"
fi
wait "$APID"
rc=$?
APID=
check "apply exits 1 (got $rc)" test "$rc" == 1
check "it names h3" grep -q "host 'h3'" "$T/apply1.log"
grep "host 'h3'" "$T/apply1.log" | sed "s/^/    /"
check "it names no other host" bash -c "! grep -q \"host 'h[12]'\" '$T/apply1.log'"
for n in 1 2; do
	check "h$n is complete: 10 deltas" test "$(clones_on "$n")" == 10
	check "h$n is complete: 10 domains" test "$(domains_on "$n")" == 10
done
check "h3 is incomplete (fewer than 10 deltas)" test "$(clones_on 3)" -lt 10

expect "an apply while h3 is down exits 1 naming it" 1 "host 'h3' is unreachable" -- ctl apply "$SPEC"
check "h3's clones are not made on h1 or h2" test "$(clones_on 1) $(clones_on 2)" == "10 10"

check "h3 comes back" host_up 3
expect "the next apply finishes the job" 0 "Applied" -- ctl apply "$SPEC"
check "h3 has its 10 deltas" test "$(clones_on 3)" == 10
check "h3 has its 10 domains" test "$(domains_on 3)" == 10
names() { for n in 1 2 3; do ls "$(store "$n")/deltas/$POOL" | sed -n 's/\.qcow2$//p'; done | sort; }
check "exactly the 30 wanted clones over the three hosts, none twice" \
	test "$(names | tr '\n' ' ')" == "$(for i in $(seq -w 1 30); do echo "$POOL-$i"; done | tr '\n' ' ')"
check "each domain defined on one host only" \
	test "$(for n in 1 2 3; do virsh -c "$(uri_of "$n")" list --all --name | grep "^$POOL-"; done | sort | uniq -d | wc -l)" == 0
expect "then there is nothing to do" 0 "nothing to do" -- ctl apply "$SPEC"
expect "destroy" 0 "Destroyed" -- ctl destroy --yes "$SPEC"

echo "== a base push cut mid-transfer"
# 1 GiB of incompressible data in a 2 GiB raw image: long enough to cut.
truncate -s 2G "$T/big.raw"
head -c 1G /dev/urandom | dd of="$T/big.raw" bs=1M seek=256 iflag=fullblock conv=notrunc status=none
ctl --root /var/lib/vdipool/t base import big "$T/big.raw" --version 1 >/dev/null || { bad "the big base imports"; finish; }
rm -f "$T/big.raw"
sha=$(ctl --root /var/lib/vdipool/t base list big -o json | grep -o '"sha256":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
spec 3 big
ctl apply "$SPEC" >"$T/apply2.log" 2>&1 &
APID=$!
part() { # part: bytes of h3's partial copy
	local f
	for f in "$(store 3)"/bases/.push-big-1-*/.disk.*.part; do [[ -f $f ]] && du -B1 "$f" | cut -f1 && return; done
	echo 0
}
end=$((SECONDS + 300))
while ((SECONDS < end)) && kill -0 "$APID" 2>/dev/null && (($(part) < 300 << 20)); do sleep 0.1; done
if kill -0 "$APID" 2>/dev/null && [[ ! -e $(store 3)/bases/big/1 ]]; then
	host_down 3
	ok "h3 stopped with $(($(part) >> 20)) MiB of the base on it"
else
	bad "h3 stopped mid-push (the push ended first)"
fi
wait "$APID"
rc=$?
APID=
check "apply exits 1 (got $rc)" test "$rc" == 1
check "it names h3" grep -q "host 'h3'" "$T/apply2.log"
grep "host 'h3'" "$T/apply2.log" | sed "s/^/    /"
check "h3 has no published copy" test ! -e "$(store 3)/bases/big/1"
for n in 1 2; do
	check "h$n has the base" test -e "$(store "$n")/bases/big/1/manifest"
done
check "h3 comes back" host_up 3
out=$(ctl apply "$SPEC" 2>&1)
rc=$?
check "the next apply exits 0 (got $rc)" test "$rc" == 0
line=$(grep '^Pushed the base:' <<<"$out")
echo "    $line"
check "it says the push resumed after an interrupted one" grep -q 'resumed after an interrupted push' <<<"$line"
sent=$(sed -n 's/^Pushed the base: \([0-9.]*\) MiB sent.*/\1/p' <<<"$line")
check "it sent less than the 1 GiB of data (${sent:-?} MiB)" \
	test "$(echo "${sent:-1024} < 1000" | bc -l)" == 1
img=$(ls "$(store 3)"/bases/big/1/disk.* 2>/dev/null | head -1)
check "h3's copy has the manifest's SHA-256" test "$(sha256sum <"${img:-/dev/null}" | cut -d' ' -f1)" == "$sha"
check "h3 got its clone" test "$(clones_on 3)" == 1
check "no staging directory is left on h3" bash -c "! ls -d '$(store 3)'/bases/.push-* 2>/dev/null"
expect "destroy" 0 "Destroyed" -- ctl destroy --yes "$SPEC"
finish
