#!/usr/bin/env bash
# check_layers.sh: calls between lib/ subsystems follow each folder's "May call:" line and form no cycle.
# Usage: check_layers.sh SRC_DIR OBJ_DIR   (OBJ_DIR: the build's CMakeFiles/vdipool_objs.dir/lib)
#        check_layers.sh --self-test       (proves the check fails on a cycle and on an undeclared call)
# Calls are read from the compiled objects (nm), so a call hidden behind a macro still counts.
set -euo pipefail

fail() { echo "check_layers: $*" >&2; exit 1; }

# check SRC OBJ: prints the edges and returns non-zero on a violation.
check() {
	local src=$1 obj=$2 sub readme allowed bad=0 edges
	declare -A may
	for d in "$src"/lib/*/; do
		sub=$(basename "$d")
		[[ $sub == include ]] && continue
		compgen -G "$d*.c" >/dev/null || continue
		readme=$d/README.md
		[[ -f $readme ]] || { echo "lib/$sub/ has no README.md saying what it owns and may call"; bad=1; continue; }
		allowed=$(sed -n 's/^May call: *//p' "$readme" | head -1)
		[[ -n $allowed ]] || { echo "lib/$sub/README.md has no 'May call:' line"; bad=1; continue; }
		may[$sub]=" $(echo "$allowed" | tr -d ',') "
		compgen -G "$obj/$sub/*.o" >/dev/null || { echo "no objects for lib/$sub/ under $obj"; bad=1; }
	done
	edges=$(for o in "$obj"/*/*.o; do
		sub=$(basename "$(dirname "$o")")
		nm "$o" | awk -v s="$sub" '$1 == "U" { print "U", s, $2 } $2 ~ /^[TDBRC]$/ { print "D", s, $3 }'
	done | awk '$1 == "D" { def[$3] = $2; next } { use[NR] = $2 " " $3 }
		END { for (i in use) { split(use[i], a, " "); if ((a[2] in def) && def[a[2]] != a[1]) print a[1], def[a[2]], a[2] } }' | sort -u)
	while read -r from to symbol; do
		[[ -z $from ]] && continue
		if [[ -z ${may[$from]+x} ]]; then
			echo "lib/$from/ calls $symbol in lib/$to/ but declares nothing"; bad=1
		elif [[ ${may[$from]} != *" everything "* && ${may[$from]} != *" $to "* ]]; then
			echo "lib/$from/ calls $symbol in lib/$to/, not in its 'May call:' list (${may[$from]# })"; bad=1
		fi
	done <<<"$edges"
	if ! awk '{ print $1, $2 }' <<<"$edges" | sort -u | tsort >/dev/null 2>"$obj/.tsort.err"; then
		echo "calls between subsystems form a cycle: $(tr '\n' ' ' <"$obj/.tsort.err")"; bad=1
	fi
	rm -f "$obj/.tsort.err"
	awk '{ print $1 " -> " $2 }' <<<"$edges" | sort | uniq -c | sed 's/^/  /'
	return $bad
}

self_test() {
	local t
	t=$(mktemp -d)
	trap 'rm -rf "$t"' RETURN
	mkdir -p "$t/src/lib/a" "$t/src/lib/b" "$t/obj/a" "$t/obj/b"
	printf 'May call: b\n' >"$t/src/lib/a/README.md"
	printf 'May call: nothing\n' >"$t/src/lib/b/README.md"
	echo 'int b_f(void); int a_f(void); int a_f(void) { return b_f(); }' >"$t/src/lib/a/a.c"
	echo 'int a_f(void); int b_f(void); int b_f(void) { return a_f(); }' >"$t/src/lib/b/b.c"
	cc -c "$t/src/lib/a/a.c" -o "$t/obj/a/a.o" && cc -c "$t/src/lib/b/b.c" -o "$t/obj/b/b.o"
	local out
	if out=$(check "$t/src" "$t/obj" 2>&1); then fail "self-test: a cycle a <-> b passed"; fi
	grep -q "lib/b/ calls a_f in lib/a/, not in its 'May call:' list" <<<"$out" || fail "self-test: undeclared call not named: $out"
	grep -q "form a cycle" <<<"$out" || fail "self-test: cycle not reported: $out"
	printf 'May call: a\n' >"$t/src/lib/b/README.md"
	if out=$(check "$t/src" "$t/obj" 2>&1); then fail "self-test: a declared cycle passed"; fi
	grep -q "form a cycle" <<<"$out" || fail "self-test: declared cycle not reported: $out"
	echo 'int a_f(void); int a_f(void) { return 0; }' >"$t/src/lib/a/a.c"
	cc -c "$t/src/lib/a/a.c" -o "$t/obj/a/a.o"
	out=$(check "$t/src" "$t/obj" 2>&1) || fail "self-test: a clean b -> a layering failed: $out"
	echo "self-test: cycles and undeclared calls are caught"
}

if [[ ${1:-} == --self-test ]]; then
	self_test
	exit 0
fi
src=${1:?usage: check_layers.sh SRC_DIR OBJ_DIR}
obj=${2:?usage: check_layers.sh SRC_DIR OBJ_DIR}
if out=$(check "$src" "$obj"); then
	echo "layers ok; calls between subsystems:"
	echo "$out"
else
	echo "$out"
	fail "lib/ layering violated (see lib/README.md)"
fi
