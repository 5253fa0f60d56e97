#!/usr/bin/env bash
# test_cli.sh: the command table: every command's --help works, has an example and is in the README;
# exit codes of the CLI contract; `validate` on good and bad specs changes nothing.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Every command in the table (as `vdipool help` lists it).
cmds=$("$CLI" help | sed -n '/^Commands:/,$p' | awk 'NR > 1 { print $1 }')
check "the command list has all commands: $cmds" test "$(wc -w <<<"$cmds")" -ge 12
for c in $cmds; do
	expect "$c --help" 0 "usage: vdipool $c" -- "$CLI" "$c" --help
	expect "$c --help has an example" 0 "Example" -- "$CLI" "$c" --help
	expect "help $c" 0 "usage: vdipool $c" -- "$CLI" help "$c"
	check "README mentions '$c'" grep -q "\`$c" "$ROOT/README.md"
done
for c in validate plan apply status destroy base gc version; do
	check "command '$c' exists" grep -qx "$c" <<<"$cmds"
done

expect "no command" 2 "usage: vdipool" -- "$CLI"
expect "unknown command" 2 "unknown command 'frobnicate'" -- "$CLI" frobnicate
expect "unknown option" 2 "unknown option '--bogus'" -- "$CLI" plan --bogus x.yaml
expect "missing value" 2 "option '-o' needs a value" -- "$CLI" version -o
expect "bad output format" 2 "unknown output format 'xml'" -- "$CLI" -o xml version
expect "relative --root" 2 "--root: must be an absolute path" -- "$CLI" --root rel base list
expect "version" 0 "vdipool 0." -- "$CLI" version
expect "version json" 0 '"vdipool":"0.' -- "$CLI" version -o json
expect "global option after the command" 0 '"libvirt":' -- "$CLI" version -o json
expect "-vv before the command (two levels)" 0 "vdipool " -- "$CLI" -vv version
expect "-vx before the command: refused, named" 2 "unknown global option '-vx'" -- "$CLI" -vx version

for f in "$ROOT"/examples/*.yaml; do
	expect "validate $(basename "$f")" 0 "valid (pool '" -- "$CLI" validate "$f"
done

# A bad spec: exit 2, file:line:col: key: reason, and nothing created anywhere.
cat >"$T/bad.yaml" <<EOF
pool:
  name: bad
base:
  name: tiny
storage:
  tiers:
    - name: local
      driver: dir
      path: $T/never
clones:
  count: -3
EOF
expect "validate rejects" 2 "$T/bad.yaml:11:10: clones.count: must be between 1 and 10000, got -3" -- "$CLI" validate "$T/bad.yaml"
expect "plan rejects the same way" 2 "clones.count: must be between 1 and 10000" -- "$CLI" plan --detailed-exitcode "$T/bad.yaml"
expect "apply rejects the same way" 2 "clones.count: must be between 1 and 10000" -- "$CLI" apply "$T/bad.yaml"
check "an invalid spec created nothing" test ! -e "$T/never"
expect "missing spec file" 2 "$T/nope.yaml" -- "$CLI" validate "$T/nope.yaml"
printf 'pool:\n\tname: x\n' >"$T/tab.yaml"
expect "tabs" 2 "$T/tab.yaml:2:1:" -- "$CLI" validate "$T/tab.yaml"
expect "json on success" 0 '"valid":true' -- "$CLI" validate -o json "$ROOT/examples/quickstart.yaml"

finish
