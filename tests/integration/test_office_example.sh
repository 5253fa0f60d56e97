#!/usr/bin/env bash
# test_office_example.sh: examples/office-desktops.yaml validates as shipped, and its plan works
# against two test hosts (scripts/test-hosts-up.sh). Only the example's hosts (uri, ssh) and tier
# paths are rewritten to point at the test hosts; everything else stays: 300 desktops of 4 GiB and
# 2 vCPUs, which this machine cannot hold. Plan creates nothing, so the example is planned as is:
# plan exits 0, shows both hosts with the base bytes to push, places on each host what its
# capacity allows (hv2's cpu_overcommit 2.0 against the pool's 4.0) and reports the rest unplaced
# with each host's reason. Nothing is applied.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EX=$ROOT/examples/office-desktops.yaml
expect "the example validates as shipped" 0 "valid (pool 'office', 300 clones of win-desktop@latest)" -- \
	"$CLI" validate "$EX"

[[ $(id -u) -eq 0 ]] || { skip "planning against test hosts needs root (users, namespaces)"; finish; }
command -v unshare >/dev/null || { skip "no unshare"; finish; }

T=$(mktemp -d /var/tmp/vp-office-XXXXXX)
chmod 755 "$T"
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_OFFICE_PORT:-22860} VP_TEST_HOSTS_USER=vpof
RUN=$VP_TEST_HOSTS_DIR
SPEC=$T/office.yaml
CTL=$T/ctl
mkdir -p "$CTL"
ctl() {
	unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/vdipool && shift && exec "$@"' \
		_ "$CTL" "$CLI" "$@" 9>&-
}
cleanup() {
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

bash "$ROOT/scripts/test-hosts-up.sh" 2 >"$T/hosts-up.log" 2>&1 9>&- || {
	bad "two test hosts come up"
	tail -20 "$T/hosts-up.log"
	finish
}
mapfile -t HOSTS <"$RUN/hosts" # "i user port pid uri"
read -r _ U1 P1 _ URI1 <<<"${HOSTS[0]}"
read -r _ U2 P2 _ URI2 <<<"${HOSTS[1]}"
URI1=${URI1//&/\\&} URI2=${URI2//&/\\&} # sed's replacement: & is the match

# The rewrite: hv1 (qemu:///system, local in the example) becomes test host 1 with an ssh block;
# hv2's uri and ssh keys point at test host 2 (its ssh.host stays absent: the uri's host); the
# tiers move from /srv/vdipool to the hosts' store, /var/lib/vdipool.
sed -e "s#^    uri: qemu:///system\$#    uri: \"$URI1\"\n    ssh: { user: $U1, port: $P1, host: 127.0.0.1, identity: $RUN/id_ed25519, known_hosts: $RUN/known_hosts }#" \
	-e "s#^    uri: qemu+ssh://vdipool@hv2.example.com/system\$#    uri: \"$URI2\"#" \
	-e "s#^      user: vdipool\$#      user: $U2#" \
	-e "s#^      port: 22\$#      port: $P2#" \
	-e "s#^      known_hosts: /etc/vdipool/known_hosts\$#      known_hosts: $RUN/known_hosts#" \
	-e "s#^      identity: /etc/vdipool/id_ed25519 #      identity: $RUN/id_ed25519 #" \
	-e "s#^      path: /srv/vdipool/#      path: /var/lib/vdipool/#" \
	"$EX" >"$SPEC"
changed=$(diff "$EX" "$SPEC" | grep '^[<>]' | grep -cv -E '^[<>] +(uri|ssh|user|port|known_hosts|identity|path): ')
check "only uri, ssh and tier paths differ from the example (other changed lines: $changed)" test "$changed" == 0
check "all eight of those lines were rewritten (hv1 gains its ssh line)" \
	test "$(diff "$EX" "$SPEC" | grep -c '^<') $(diff "$EX" "$SPEC" | grep -c '^>')" == "8 9"
expect "the rewritten example validates" 0 "valid (pool 'office', 300 clones" -- ctl validate "$SPEC"

# The base: a 2 GiB image holding 64 MiB, in the controller's fast tier.
truncate -s 2G "$T/win.raw"
head -c 64M /dev/urandom | dd of="$T/win.raw" bs=1M seek=100 iflag=fullblock conv=notrunc status=none
ctl --root /var/lib/vdipool/fast base import win-desktop "$T/win.raw" --version 2026.11 >/dev/null ||
	{ bad "the base imports on the controller"; finish; }

# What this machine's capacity allows (libvirt's node info: CPUs and MemTotal): 4 GiB, 2 vCPUs
# each; hv1 at the pool's cpu_overcommit 4.0 (max_clones 200), hv2 at its own 2.0; memory 1.0.
cpus=$(nproc --all)
mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
fit() { local c=$(($1 / 2)) m=$((mem_kib / (4 << 20))); echo $((c < m ? c : m)); }
want1=$(fit $((cpus * 4))) want2=$(fit $((cpus * 2)))
((want1 > 200)) && want1=200
unplaced=$((300 - want1 - want2))

out=$(ctl plan "$SPEC" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^(Pool|Host|Plan)|unplaced|room' | head -8 | sed 's/^/    /'
check "plan exits 0 (got $rc)" test "$rc" == 0
check "plan is over 2 hosts, spread" grep -q "on 2 hosts (placement: spread)" <<<"$out"
for h in 1 2; do
	w=want$h
	check "hv$h gets ${!w} new desktops and the base to push first" \
		grep -qE "^Host hv$h \(.*\): ${!w} clones \(${!w} new, 0 to remove\), push win-desktop@2026.11 first" <<<"$out"
done
check "the bytes to push are shown on both hosts (the image's 64 MiB of data)" \
	test "$(grep -cE '^Host hv[12] .*push win-desktop@2026.11 first \(64\.[0-9] MiB\)$' <<<"$out")" == 2
check "the plan counts $unplaced desktops unplaced" grep -q ", $unplaced unplaced" <<<"$out"
check "and lists each of them with the hosts' reasons" \
	test "$(grep -cE '^ +! desk-[0-9]{3} +no host has room: hv1: .*; hv2: ' <<<"$out")" == "$unplaced"
check "an unplaced desktop has each host's reason" \
	grep -qE "desk-300.*hv1: not enough (memory|vCPUs).*hv2: not enough (memory|vCPUs)" <<<"$out"
check "nothing was made on either host" \
	test -z "$(find "$RUN"/host[12]/store -name '*.qcow2' -o -name 'disk.*' -o -name '.push-*')"
finish
