#!/usr/bin/env bash
# test_docs.sh: a man page and bash completion for every command `vdipool help` lists (made from the
# same help text, so they cannot drift), every spec schema key in vdipool-pool.yaml(5), the
# completion answering (commands, options, pool files, base versions, clone names), and the
# configuration file (its keys take effect; errors name file:line:key, exit 2).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MAN=$BUILD/man
COMP=$ROOT/dist/bash-completion/vdipool
export VDIPOOL_CONFIG=/dev/null

cmds=$("$CLI" help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
check "vdipool help lists commands" test "$(wc -w <<<"$cmds")" -ge 12

# ---- man pages ----
man_ok() { # man_ok PAGE NEEDLE: the page exists, renders without a warning, and says NEEDLE
	local out warn
	[[ -s $1 ]] || { echo "    $1 missing"; return 1; }
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$1" 2>&1 >/dev/null)
	[[ -z $warn ]] || { echo "    $1: $warn"; return 1; }
	out=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$1" 2>/dev/null | col -bx)
	[[ $out == *"$2"* ]] || { echo "    $1 lacks '$2'"; return 1; }
}
check "vdipool(1)" man_ok "$MAN/man1/vdipool.1" "vdipool - pools of libvirt linked clones"
for c in $cmds; do
	usage=$("$CLI" help "$c" | head -1 | sed 's/^usage: //')
	check "vdipool-$c(1) exists, renders cleanly and has the usage line" man_ok "$MAN/man1/vdipool-$c.1" "$usage"
	check "vdipool(1) lists '$c'" grep -qE "^ +$c +[a-z]" <(man -l "$MAN/man1/vdipool.1" 2>/dev/null | col -bx)
done
extra=$(ls "$MAN/man1" | sed -n 's/^vdipool-\(.*\)\.1$/\1/p' | grep -vxF -f <(printf '%s\n' $cmds))
check "no man page for a command that is gone: '${extra}'" test -z "$extra"
check "vdipool-pool.yaml(5)" man_ok "$MAN/man5/vdipool-pool.yaml.5" "storage.tiers[i].driver"
# Every key of the schema's field tables (lib/spec/spec_schema.c) is in the spec's man page.
keys=$(grep -oE '(\bF[A-Z]*\(|\.key = )"[a-z_0-9]+"' "$ROOT/lib/spec/spec_schema.c" | grep -oE '"[a-z_0-9]+"' | tr -d '"' | sort -u)
check "the schema has keys ($(wc -w <<<"$keys"))" test "$(wc -w <<<"$keys")" -ge 40
page=$(man -l "$MAN/man5/vdipool-pool.yaml.5" 2>/dev/null | col -bx | tr -d '\n ' )
missing=""
for k in $keys; do [[ $page == *"$k"* ]] || missing+=" $k"; done
check "every schema key is in vdipool-pool.yaml(5):${missing:- yes}" test -z "$missing"

# ---- bash completion ----
mkdir -p "$T/work"
touch "$T/work/a.yaml" "$T/work/b.yml" "$T/work/notes.txt"
# A store with one base version, for NAME@VERSION answers.
qemu-img create -q -f raw "$T/base.raw" 16M
"$CLI" --root "$T/store" base import cbase "$T/base.raw" --version 7 >/dev/null 2>&1
complete_words() { # complete_words WORD...: what the completion offers for the last word
	(cd "$T/work" && PATH=$(dirname "$CLI"):$PATH bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		complete -p vdipool >/dev/null || exit 9
		_vdipool; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@")
}
has() { grep -qxF -- "$2" <<<"$1" || { echo "    '$2' not in: $(tr '\n' ' ' <<<"$1")"; return 1; }; }
hasnt() { ! grep -qxF -- "$2" <<<"$1" || { echo "    '$2' offered"; return 1; }; }
all=$(complete_words vdipool "")
for c in $cmds; do
	check "completion offers command '$c'" has "$all" "$c"
	# Each option the command's help names is offered after "--".
	opts=$(complete_words vdipool "$c" --)
	for o in $("$CLI" help "$c" | grep -oE '^ +--[a-z][a-z0-9-]*' | tr -d ' ' | sort -u); do
		check "completion offers '$c $o'" has "$opts" "$o"
	done
done
check "completion: 'ap' is apply" test "$(complete_words vdipool ap)" = apply
y=$(complete_words vdipool apply "")
check "completion: pool files for apply" has "$y" a.yaml
check "completion: .yml too" has "$y" b.yml
check "completion: no other files" hasnt "$y" notes.txt
check "completion: base subcommands" has "$(complete_words vdipool base "")" import
check "completion: rollout continue" has "$(complete_words vdipool rollout "")" continue
check "completion: -o formats" has "$(complete_words vdipool status -o "")" prometheus
check "completion: NAME@VERSION from base list" has "$(complete_words vdipool --root "$T/store" base rm "")" cbase@7

# ---- the configuration file ----
cat >"$T/ok.conf" <<CONF
# a comment
root = $T/store

syslog = off
CONF
expect "config: root comes from the file" 0 "cbase" -- "$CLI" --config "$T/ok.conf" base list
expect "config: VDIPOOL_CONFIG names the file" 0 "cbase" -- env VDIPOOL_CONFIG="$T/ok.conf" "$CLI" base list
out=$("$CLI" --config "$T/ok.conf" --root "$T/empty" base list 2>&1)
check "config: --root still wins" test "${out/cbase/}" = "$out"
printf 'root = %s\nbogus = 1\n' "$T/store" >"$T/bad1.conf"
expect "config: unknown key names file:line:key" 2 "$T/bad1.conf:2: bogus: unknown key" -- "$CLI" --config "$T/bad1.conf" version
printf '\nsyslog = maybe\n' >"$T/bad2.conf"
expect "config: bad value names file:line:key" 2 "$T/bad2.conf:2: syslog: expected on or off, got 'maybe'" -- "$CLI" --config "$T/bad2.conf" version
printf 'root = relative/dir\n' >"$T/bad3.conf"
expect "config: relative path refused" 2 "$T/bad3.conf:1: root: expected an absolute path" -- "$CLI" --config "$T/bad3.conf" version
printf 'root /x\n' >"$T/bad4.conf"
expect "config: a line without '='" 2 "$T/bad4.conf:1: expected 'key = value'" -- "$CLI" --config "$T/bad4.conf" version
expect "config: a missing --config file" 2 "cannot read the configuration file" -- "$CLI" --config "$T/nope.conf" version
expect "config: the shipped file is all defaults" 0 "vdipool 0." -- "$CLI" --config "$ROOT/dist/vdipool.conf" version

echo "test_docs: $pass passed, $fail failed"
((fail == 0))
