#!/usr/bin/env bash
# test_fleet_push.sh: `vdipool base push NAME@V --spec POOL.yaml [--hosts ...]` over four real hosts
# (scripts/test-hosts-up.sh: each an sshd in its own mount namespace with its own store). The
# controller runs the CLI in a namespace of its own, so a base reaches a host only by a push.
# Checked: unknown and misspelt --hosts names are usage errors naming them; --hosts pushes to the
# named hosts only; with distribution.fanout and max_parallel_hosts 1 the rounds are
# this machine -> h1; h1 -> h2 and this machine -> h3; h1 -> h4 (3 rounds, not 4), every host ends
# with the controller's sha256; without fanout 4 rounds, all from this machine; a second push finds
# the version everywhere; a seed that cannot run vdipool is left out and its targets are pushed
# from this machine; a host this machine cannot reach fails, is named, exit 1, the others done.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) -eq 0 ]] || { skip "test_fleet_push needs root (users, namespaces)"; finish; }
command -v unshare >/dev/null || { skip "no unshare"; finish; }

T=$(mktemp -d /var/tmp/vp-fpush-XXXXXX)
chmod 755 "$T"
# Seeds run vdipool as their host's user: a copy those users can reach (a checkout under a 0700
# directory, such as a CI clone made by mktemp -d, is not theirs to enter).
SEEDBIN=$T/seedbin
mkdir -p "$SEEDBIN"
cp "$CLI" "$SEEDBIN/vdipool.bin"
cp -P "$BUILD"/libvdipool.so* "$SEEDBIN/"
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s/vdipool.bin "$@"\n' "$SEEDBIN" "$SEEDBIN" >"$SEEDBIN/vdipool"
chmod -R a+rX "$SEEDBIN"
chmod 0755 "$SEEDBIN/vdipool" "$SEEDBIN/vdipool.bin"
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_FLEET_PUSH_PORT:-22900} VP_TEST_HOSTS_USER=${VP_FLEET_PUSH_USER:-vppu}
RUN=$VP_TEST_HOSTS_DIR
SPEC=$T/pool.yaml
CTL=$T/ctl # the controller's /var/lib/vdipool
mkdir -p "$CTL"

ctl() { # runs the CLI as the controller: its own /var/lib/vdipool
	unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/vdipool && shift && exec "$@"' \
		_ "$CTL" "$CLI" "$@"
}
cleanup() {
	[[ -f $SPEC ]] && ctl destroy -q --yes "$SPEC" >/dev/null 2>&1
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

bash "$ROOT/scripts/test-hosts-up.sh" 4 >"$T/hosts-up.log" 2>&1 || {
	bad "four test hosts come up"
	tail -20 "$T/hosts-up.log"
	finish
}
mapfile -t HOSTS <"$RUN/hosts" # "i user port pid uri"

# The key seeds log in to other hosts with: on the hosts' side (readable by their users), and
# accepted by every host.
ssh-keygen -q -t ed25519 -N '' -C vdipool-test-seed -f "$RUN/seed_ed25519"
chmod 0644 "$RUN/seed_ed25519"
for line in "${HOSTS[@]}"; do
	read -r i _ <<<"$line"
	cat "$RUN/seed_ed25519.pub" >>"$RUN/host$i/authorized_keys"
done

spec() { # spec FANOUT [SEED_VDIPOOL] [KNOWN_HOSTS_OF_H4]
	{
		cat <<EOF
pool: { name: fp$$ }
base: { name: tiny, version: "${BASEV:-1}" }
storage:
  tiers: [ { name: local, driver: dir, path: /var/lib/vdipool/t } ]
clones: { count: ${COUNT:-1}, name: "fp$$-{index}" }
domain: { memory: 128M, vcpus: 1, network: none, start: false, accel: tcg }
placement: { policy: spread }
distribution:
  max_parallel_hosts: 1
  fanout: $1
  seed_vdipool: ${2:-$SEEDBIN/vdipool}
  seed_identity: $RUN/seed_ed25519
  seed_known_hosts: $RUN/known_hosts
hosts:
EOF
		for line in "${HOSTS[@]}"; do
			local kh=$RUN/known_hosts i user port uri
			read -r i user port _ uri <<<"$line"
			[[ $i == 4 ]] && kh=${3:-$kh}
			cat <<EOF
  - name: h$i
    uri: "$uri"
    ssh: { user: $user, port: $port, host: 127.0.0.1, identity: $RUN/id_ed25519, known_hosts: $kh }
EOF
		done
	} >"$SPEC"
}

# A 256 MiB raw image with 24 MiB of data (its own pattern per version).
mkimage() {
	qemu-img create -q -f raw "$1" 256M
	for ((k = 0; k < 6; k++)); do
		qemu-io -f raw -c "write -P $((($2 * 7 + k) % 250 + 1)) $((k * 40))M 4M" "$1" >/dev/null
	done
}
for v in 1 2 3 4 5 6; do
	mkimage "$T/img$v.raw" "$v"
	ctl --root /var/lib/vdipool/t base import tiny "$T/img$v.raw" --version "$v" --format raw >/dev/null ||
		bad "tiny@$v imports on the controller"
done
sha_of() { sha256sum <"$CTL/t/bases/tiny/$1/disk.raw" | cut -d' ' -f1; }
on_host() { # on_host I V: the sha256 of host I's copy of tiny@V ("none" when absent)
	local f=$RUN/host$1/store/t/bases/tiny/$2/disk.raw
	if [[ -f $f && -f $RUN/host$1/store/t/bases/tiny/$2/manifest ]]; then sha256sum <"$f" | cut -d' ' -f1; else echo none; fi
}
[[ -f $CTL/t/bases/tiny/1/disk.raw ]] || { bad "the imported image is $CTL/t/bases/tiny/V/disk.raw"; ls -R "$CTL/t/bases" | head; finish; }

echo "== usage"
spec true
expect "an unknown host is a usage error naming it" 2 "no host 'h9', 'hx' in" -- ctl base push tiny@1 --spec "$SPEC" --hosts h1,h9,hx
expect "--to and --spec do not mix" 2 "--spec takes each host's ssh settings" -- \
	ctl base push tiny@1 --spec "$SPEC" --to x@127.0.0.1
expect "--hosts needs --spec" 2 "it needs --spec" -- ctl --root /var/lib/vdipool/t base push tiny@1 --hosts h1
expect "a version the controller lacks fails" 1 "tiny@77" -- ctl base push tiny@77 --spec "$SPEC"
out=$(ctl base push --help 2>&1)
check "--help teaches --spec, --hosts and fan-out" bash -c 'grep -q -- "--spec POOL.yaml" <<<"$1" && grep -q -- "--hosts H1,H2" <<<"$1" && grep -q "distribution.fanout" <<<"$1"' _ "$out"

echo "== --hosts: only the named hosts"
expect "tiny@1 to h3 only" 0 "h3: pushed tiny@1 in round 1 from this machine" -- ctl base push tiny@1 --spec "$SPEC" --hosts h3
check "h3 holds tiny@1, checked" test "$(on_host 3 1)" == "$(sha_of 1)"
for n in 1 2 4; do check "h$n was left alone" test "$(on_host "$n" 1)" == none; done

echo "== fan-out, 4 hosts, max_parallel_hosts 1: rounds grow like log(hosts)"
t0=$SECONDS
out=$(ctl base push tiny@2 --spec "$SPEC" 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
check "exit 0" test "$rc" == 0
check "round 1: this machine -> h1" grep -q "^h1: pushed tiny@2 in round 1 from this machine: sent 24.0 MiB" <<<"$out"
check "round 2: h1 -> h2" grep -q "^h2: pushed tiny@2 in round 2 from h1: sent 24.0 MiB" <<<"$out"
check "round 2: this machine -> h3" grep -q "^h3: pushed tiny@2 in round 2 from this machine" <<<"$out"
check "round 3: h1 -> h4" grep -q "^h4: pushed tiny@2 in round 3 from h1" <<<"$out"
check "3 rounds, 2 pushes by this machine, 2 by hosts" grep -q "^Pushed tiny@2 to 4 hosts in 3 rounds (2 from this machine, 2 from hosts)" <<<"$out"
for n in 1 2 3 4; do check "h$n holds tiny@2 with the controller's sha256" test "$(on_host "$n" 2)" == "$(sha_of 2)"; done
check "each copy is read-only" test "$(stat -c %a "$RUN/host4/store/t/bases/tiny/2/disk.raw")" == 444
echo "    ($((SECONDS - t0)) s)"
expect "a second push finds it everywhere, no round" 0 "to 0 hosts in 0 rounds (0 from this machine, 0 from hosts), 4 already there" -- \
	ctl base push tiny@2 --spec "$SPEC"
out=$(ctl -o json base push tiny@2 --spec "$SPEC" 2>&1)
check "json: four hosts already there" grep -q '"rounds":0,"pushed":0,"already":4,"failed":0' <<<"$out"

echo "== h3 holds tiny@1 already: it seeds from round 1"
out=$(ctl -v base push tiny@1 --spec "$SPEC" 2>&1)
check "tiny@1 everywhere in 2 rounds" grep -q "^Pushed tiny@1 to 3 hosts in 2 rounds (1 from this machine, 2 from hosts), 1 already there" <<<"$out"
check "-v: round 1: h3 -> h1 (the first host lacking it)" grep -q "^  round 1: h3 pushed to h1$" <<<"$out"
check "-v: round 1: this machine -> h2" grep -q "^  round 1: this machine pushed to h2$" <<<"$out"
check "-v: round 2: h1 -> h4" grep -q "^  round 2: h1 pushed to h4$" <<<"$out"
for n in 1 2 3 4; do check "h$n holds tiny@1" test "$(on_host "$n" 1)" == "$(sha_of 1)"; done

echo "== without fanout: one host a round, all from this machine"
spec false
out=$(ctl base push tiny@3 --spec "$SPEC" 2>&1)
check "4 rounds, every push by this machine" grep -q "^Pushed tiny@3 to 4 hosts in 4 rounds (4 from this machine, 0 from hosts: distribution.fanout is off)" <<<"$out"
for n in 1 2 3 4; do
	check "h$n: round $n from this machine" grep -q "^h$n: pushed tiny@3 in round $n from this machine" <<<"$out"
	check "h$n holds tiny@3" test "$(on_host "$n" 3)" == "$(sha_of 3)"
done

echo "== a seed that cannot run vdipool: left out, its targets pushed from this machine"
spec true /nonexistent/vdipool
out=$(ctl base push tiny@4 --spec "$SPEC" 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
check "exit 0: every host got it" test "$rc" == 0
check "h2 came from this machine after h1's seeding failed, saying why" \
	grep -q "^h2: pushed tiny@4 in round 3 from this machine.*(seeded from h1: no vdipool on the host (exit 127" <<<"$out"
for n in 1 2 3 4; do check "h$n holds tiny@4" test "$(on_host "$n" 4)" == "$(sha_of 4)"; done

echo "== a host this machine cannot reach"
: >"$T/empty_known_hosts"
spec false "" "$T/empty_known_hosts"
expect "exit 1 naming h4" 1 "tiny@5 did not reach 1 host: h4" -- ctl base push tiny@5 --spec "$SPEC"
out=$(ctl base push tiny@5 --spec "$SPEC" 2>&1)
check "h4's line says why (its host key)" grep -q "^h4: FAILED: .*known" <<<"$out"
for n in 1 2 3; do check "h$n got tiny@5 all the same" test "$(on_host "$n" 5)" == "$(sha_of 5)"; done
check "h4 did not" test "$(on_host 4 5)" == none
echo "== apply with fanout: the base reaches the hosts the same way"
# Where a seed logged in: its key's fingerprint in a host's sshd log since a mark.
SEEDFP=$(ssh-keygen -lf "$RUN/seed_ed25519.pub" | cut -d' ' -f2)
declare -A mark
for n in 1 2 3 4; do mark[$n]=$(wc -l <"$RUN/host$n/sshd.log"); done
seeded() { tail -n +"$((mark[$1] + 1))" "$RUN/host$1/sshd.log" | grep -q "Accepted publickey for .*$SEEDFP"; }
BASEV=6 COUNT=4 spec true
out=$(ctl plan "$SPEC" 2>&1)
check "plan: each host gets a clone and tiny@6 to push first" bash -c '[[ $(grep -c ": 1 clone (1 new, 0 to remove), push tiny@6 first" <<<"$1") == 4 ]]' _ "$out"
expect "apply over four hosts" 0 "Applied 4 clones" -- ctl apply "$SPEC"
for n in 1 2 3 4; do check "h$n holds tiny@6 with the controller's sha256" test "$(on_host "$n" 6)" == "$(sha_of 6)"; done
check "h2 got it from a seed (the seed key logged in there)" seeded 2
check "h4 got it from a seed" seeded 4
not_seeded() { ! seeded "$1"; }
check "h1 got it from this machine (no seed logged in)" not_seeded 1
check "h3 got it from this machine" not_seeded 3
expect "a second apply has nothing to do" 0 "nothing to do" -- ctl apply "$SPEC"

finish
