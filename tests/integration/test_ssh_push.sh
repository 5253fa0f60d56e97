#!/usr/bin/env bash
# test_ssh_push.sh: `vdipool base push` against 3 real sshd test hosts: sparse, verified, resumed, refused when it must be.
# Each host is an sshd in its own mount namespace with its own store on /var/lib/vdipool
# (scripts/test-hosts-up.sh); what a host holds is checked through that host's view (nsenter).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Others run tests against shared daemons: one integration run at a time.
exec 9>/tmp/vp-itest.lock
flock 9

if [[ $(id -u) -ne 0 ]]; then
	skip "needs root (users, mount namespaces)"
	finish
fi

T=$(mktemp -d /var/tmp/vp-itest-ssh-XXXXXX)
chmod 0755 "$T" # the hosts' users read their authorized_keys below it
export VP_TEST_HOSTS_DIR=$T/hosts VP_TEST_HOSTS_PORT=${VP_TEST_SSH_PORT:-22300}
# Users vphost<i> by default; another prefix when a parallel run needs its own.
export VP_TEST_HOSTS_USER=${VP_TEST_HOSTS_USER:-vphost}
U=$VP_TEST_HOSTS_USER
agent=
cleanup() {
	[[ -n $agent ]] && kill "$agent" 2>/dev/null
	bash "$ROOT/scripts/test-hosts-down.sh" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

if ! bash "$ROOT/scripts/test-hosts-up.sh" 3 >"$T/up.log" 2>&1; then
	bad "test hosts up: $(tail -3 "$T/up.log")"
	finish
fi
ok "3 test hosts up"
H=$VP_TEST_HOSTS_DIR
KH=$H/known_hosts ID=$H/id_ed25519
NAME=itest-ssh
MiB=$((1 << 20))
port() { echo $((VP_TEST_HOSTS_PORT + $1)); }
pid() { cat "$H/host$1/pid"; }
# on HOST CMD...: runs CMD as root in the host's mount namespace (its view of /var/lib/vdipool).
on() { local h=$1; shift; nsenter -t "$(pid "$h")" -m "$@"; }
push() { local h=$1; shift; "$CLI" --root "$T/store" base push "$@" --to "$U$h@127.0.0.1:$(port "$h")" --identity "$ID" --known-hosts "$KH"; }
field() { grep -o "\"$1\":[0-9]*" <<<"$2" | cut -d: -f2; }
sha_of() { "$CLI" --root "$T/store" base list "$NAME" -o json | grep -o "\"version\":\"$1\"[^}]*\"sha256\":\"[0-9a-f]*\"" | grep -o '[0-9a-f]\{64\}'; }

# A 1 GiB raw image holding 64 MiB of data in 16 extents of 4 MiB (each its own pattern).
mkimage() {
	local f=$1 seed=$2
	qemu-img create -q -f raw "$f" 1G
	for ((i = 0; i < 16; i++)); do
		qemu-io -f raw -c "write -P $(((seed * 16 + i) % 250 + 1)) $((i * 64 + seed))M 4M" "$f" >/dev/null
	done
}
for v in 1 2 3 4; do
	mkimage "$T/img$v.raw" "$v"
	"$CLI" --root "$T/store" base import "$NAME" "$T/img$v.raw" --version "$v" --format raw >/dev/null ||
		bad "import $NAME@$v"
done
mkimage "$T/img6.raw" 6
"$CLI" --root "$T/store" base import "$NAME" "$T/img6.raw" --version 6 --format raw >/dev/null || bad "import $NAME@6"
mkimage "$T/img5.raw" 5
"$CLI" --root "$T/store" base import "$NAME" "$T/img5.raw" --version 5 >/dev/null || bad "import $NAME@5 (qcow2)"
SHA1=$(sha_of 1)
check "local version 1 has a sha256" test ${#SHA1} -eq 64

# Host 3 has no openssl (an `openssl` that is not found): the hash falls back to sha256sum.
mkdir -p "$T/no-openssl" "$H/host3/home/.ssh"
printf '#!/bin/sh\ntouch %s/no-openssl/called\nexit 127\n' "$T" >"$T/no-openssl/openssl"
chmod 0755 "$T/no-openssl/openssl"
chmod 0777 "$T/no-openssl"
echo "PATH=$T/no-openssl:/usr/local/bin:/usr/bin:/bin" >"$H/host3/home/.ssh/environment"
chown -R ${U}3: "$H/host3/home/.ssh"

# ---- a push to every host: complete, read-only, identical, sparse, only the data sent -----------
for h in 1 2 3; do
	out=$(push "$h" "$NAME@1" -o json 2>&1)
	rc=$?
	check "host$h: push exits 0 ($out)" test $rc -eq 0
	d=/var/lib/vdipool/bases/$NAME/1
	check "host$h: image hash on the host is the manifest's" test "$(on "$h" sha256sum "$d/disk.raw" | cut -d' ' -f1)" = "$SHA1"
	check "host$h: image and manifest are read-only (0444)" test "$(on "$h" stat -c %a "$d/disk.raw" "$d/manifest" | sort -u)" = 444
	check "host$h: manifest is the local one" cmp -s <(on "$h" cat "$d/manifest") "$T/store/bases/$NAME/1/manifest"
	check "host$h: virtual size kept (1 GiB)" test "$(on "$h" stat -c %s "$d/disk.raw")" -eq $((1024 * MiB))
	alloc=$(on "$h" stat -c '%b*%B' "$d/disk.raw")
	check "host$h: sparse on the host (allocated $((alloc / MiB)) MiB for 64 MiB of data)" test $((alloc)) -lt $((72 * MiB))
	check "host$h: image mtime is the local one (nanoseconds too)" test "$(on "$h" stat -c %y "$d/disk.raw")" = "$(stat -c %y "$T/store/bases/$NAME/1/disk.raw")"
	expect "host$h: the host's own store verifies the version" 0 "" -- on "$h" "$CLI" --root /var/lib/vdipool base verify "$NAME@1"
	data=$(field image_data "$out")
	# qemu-img allocates the first 4 KiB of a raw image besides the 64 MiB written.
	check "host$h: the image's extents hold the data ($data bytes)" test "$data" -ge $((64 * MiB)) -a "$data" -le $((64 * MiB + 65536))
	check "host$h: sent the extents only (sent $(field sent "$out"))" test "$(field sent "$out")" -eq "$data"
	wire=$(field wire_sent "$out")
	check "host$h: bytes on the wire ~ data, not virtual size ($((wire / MiB)) MiB)" test "$wire" -lt $((68 * MiB))
	check "host$h: no staging directory, partial or record left" test "$(on "$h" ls -A /var/lib/vdipool/bases)" = "$NAME"
	check "host$h: version directory has exactly image and manifest" test "$(on "$h" ls -A "$d" | tr '\n' ' ')" = "disk.raw manifest "
done
check "host3 hashed with sha256sum (openssl was asked first, not found)" test -e "$T/no-openssl/called"
check "each host's store is its own: not in the machine's /var/lib/vdipool" test ! -e "/var/lib/vdipool/bases/$NAME"
check "host1's store directory has the version (bind-mounted view)" test -f "$H/host1/store/bases/$NAME/1/manifest"

# ---- a second push is a no-op ----------------------------------------------------------------------
expect "second push: already there" 0 "already there" -- push 2 "$NAME@1"

# ---- qcow2 image -----------------------------------------------------------------------------------
out=$(push 1 "$NAME@5" 2>&1)
check "qcow2 version pushed ($out)" test $? -eq 0
check "qcow2 version hash on host1" test "$(on 1 sha256sum "/var/lib/vdipool/bases/$NAME/5/disk.qcow2" | cut -d' ' -f1)" = "$(sha_of 5)"

# ---- resume: the connection cut after ~40 MB, then a re-push sends clearly less -----------------------
out=$(VDIPOOL_TEST_SSH_CUT_AFTER=$((40 * 1000 * 1000)) push 1 "$NAME@3" -o json 2>&1)
check "cut push fails (exit $?): ${out:0:200}" test -n "$(on 1 sh -c "ls /var/lib/vdipool/bases/.push-$NAME-3-*/.disk.raw.part 2>/dev/null")"
check "cut push leaves no version" test -z "$(on 1 ls /var/lib/vdipool/bases/$NAME/ | grep -x 3)"
out=$(push 1 "$NAME@3" -o json 2>&1)
rc=$?
sent=$(field sent "$out") resumed=$(field resumed "$out")
check "re-push succeeds ($out)" test $rc -eq 0
check "re-push resumed ($((resumed / MiB)) MiB were there) and sent less than a full copy ($((sent / MiB)) MiB)" \
	test "$resumed" -ge $((16 * MiB)) -a "$sent" -le $((48 * MiB)) -a $((sent + resumed)) -eq "$(field image_data "$out")"
check "resumed image verifies on the host" test "$(on 1 sha256sum "/var/lib/vdipool/bases/$NAME/3/disk.raw" | cut -d' ' -f1)" = "$(sha_of 3)"
check "no old staging directory left after the resume" test "$(on 1 ls -A /var/lib/vdipool/bases | tr '\n' ' ')" = "$NAME "

# ---- resume after the host's per-connection sshd is killed (kill -9) mid-transfer ------------------
# One packet in flight (--window 30000) to make the transfer slow enough to catch.
push 2 "$NAME@6" --window 30000 -o json >"$T/kill.out" 2>&1 &
pusher=$!
killed=0
for ((t = 0; t < 1000; t++)); do
	part=$(on 2 sh -c "ls /var/lib/vdipool/bases/.push-$NAME-6-*/.disk.raw.part 2>/dev/null")
	if [[ -n $part ]] && (($(on 2 stat -c '%b*%B' "$part" 2>/dev/null || echo 0) >= 40 * MiB)); then
		for c in $(pgrep -P "$(pid 2)"); do
			kill -9 $(pgrep -P "$c") "$c" 2>/dev/null
		done
		killed=1
		break
	fi
	kill -0 "$pusher" 2>/dev/null || break
	sleep 0.01
done
wait "$pusher"
rc=$?
if ((killed && rc != 0)); then
	ok "push fails when the host's sshd connection is killed: $(head -c 200 "$T/kill.out")"
	out=$(push 2 "$NAME@6" -o json 2>&1)
	sent=$(field sent "$out") resumed=$(field resumed "$out")
	check "re-push after the kill resumed ($((resumed / MiB)) MiB there) and sent less ($((sent / MiB)) MiB): $out" \
		test "$resumed" -ge $((16 * MiB)) -a "$sent" -lt $((48 * MiB)) -a $((sent + resumed)) -eq "$(field image_data "$out")"
	check "re-push after the kill verifies on the host" test "$(on 2 sha256sum "/var/lib/vdipool/bases/$NAME/6/disk.raw" | cut -d' ' -f1)" = "$(sha_of 6)"
else
	skip "the transfer to host 2 ended before the sshd could be killed (killed=$killed, exit $rc)"
fi

# ---- a tampered partial file is caught by the hash check and deleted ---------------------------------
VDIPOOL_TEST_SSH_CUT_AFTER=$((40 * 1000 * 1000)) push 2 "$NAME@4" >/dev/null 2>&1
part=$(on 2 sh -c "ls /var/lib/vdipool/bases/.push-$NAME-4-*/.disk.raw.part")
# Bytes inside the first extent (4 MiB at 4 MiB), below the resume point: they are not sent again.
on 2 sh -c "printf 'XXXXXXXX' | dd of='$part' bs=1 seek=$((4 * MiB + 4096)) conv=notrunc status=none"
expect "tampered partial: refused with both hashes" 1 "expected $(sha_of 4)" -- push 2 "$NAME@4"
check "tampered partial: deleted" test -z "$(on 2 sh -c "ls /var/lib/vdipool/bases/.push-$NAME-4-*/.disk.raw.part 2>/dev/null")"
check "tampered partial: no version published" test -z "$(on 2 ls /var/lib/vdipool/bases/$NAME/ | grep -x 4)"
out=$(push 2 "$NAME@4" -o json 2>&1)
check "push after the tamper starts over and succeeds ($(field sent "$out") sent)" test "$(field sent "$out")" = "$(field image_data "$out")"

# ---- a version on the host with other content is refused, never overwritten --------------------------
on 3 sh -c "cp -a /var/lib/vdipool/bases/$NAME/1 /var/lib/vdipool/bases/$NAME/2"
expect "other content on the host: refused" 1 "has other content" -- push 3 "$NAME@2"
check "other content on the host: left alone" test "$(on 3 sha256sum "/var/lib/vdipool/bases/$NAME/2/disk.raw" | cut -d' ' -f1)" = "$SHA1"

# ---- host keys and auth ------------------------------------------------------------------------------
fp2=$(ssh-keygen -lf "$H/host2/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
grep -v "]:$(port 2) " "$KH" >"$T/kh-without-2"
expect "unknown host key: refused with its fingerprint and the file" 1 "$fp2" -- \
	"$CLI" --root "$T/store" base push "$NAME@1" --to "${U}2@127.0.0.1:$(port 2)" --identity "$ID" --known-hosts "$T/kh-without-2"
expect "unknown host key: says which file to add it to" 1 "add the key to '$T/kh-without-2'" -- \
	"$CLI" --root "$T/store" base push "$NAME@1" --to "${U}2@127.0.0.1:$(port 2)" --identity "$ID" --known-hosts "$T/kh-without-2"
{ cat "$T/kh-without-2"; echo "[127.0.0.1]:$(port 2) $(cut -d' ' -f1,2 "$H/host1/ssh_host_ed25519_key.pub")"; } >"$T/kh-changed"
expect "changed host key: refused" 1 "host key of '[127.0.0.1]:$(port 2)' has changed: it is now ssh-ed25519 $fp2" -- \
	"$CLI" --root "$T/store" base push "$NAME@1" --to "${U}2@127.0.0.1:$(port 2)" --identity "$ID" --known-hosts "$T/kh-changed"
ssh-keygen -q -t ed25519 -N '' -f "$T/wrong_key"
expect "wrong key: refused" 1 "authentication as '${U}2' with key '$T/wrong_key' failed" -- \
	"$CLI" --root "$T/store" base push "$NAME@1" --to "${U}2@127.0.0.1:$(port 2)" --identity "$T/wrong_key" --known-hosts "$KH"
eval "$(ssh-agent -s -a "$T/agent.sock")" >/dev/null && agent=$SSH_AGENT_PID
ssh-add -q "$ID" 2>/dev/null
expect "ssh-agent: its key logs in (no --identity)" 0 "already there" -- \
	"$CLI" --root "$T/store" base push "$NAME@1" --to "${U}1@127.0.0.1:$(port 1)" --known-hosts "$KH"
ssh-add -q -D 2>/dev/null
expect "ssh-agent without the key: refused" 1 "ssh-agent offered no key that" -- \
	"$CLI" --root "$T/store" base push "$NAME@1" --to "${U}1@127.0.0.1:$(port 1)" --known-hosts "$KH"
kill "$agent" && agent=
expect "no identity and no agent: says what to do" 1 "pass --identity FILE or start an agent" -- \
	env -u SSH_AUTH_SOCK "$CLI" --root "$T/store" base push "$NAME@1" --to "${U}1@127.0.0.1:$(port 1)" --known-hosts "$KH"
expect "nothing listening: refused" 1 "cannot connect to '127.0.0.1' port 1" -- \
	"$CLI" --root "$T/store" base push "$NAME@1" --to "${U}2@127.0.0.1:1" --identity "$ID" --known-hosts "$KH"
expect "usage: --to missing" 2 "--to [USER@]HOST[:PORT] is required" -- "$CLI" --root "$T/store" base push "$NAME@1"
expect "unknown version" 1 "$NAME@9" -- push 1 "$NAME@9"

finish
