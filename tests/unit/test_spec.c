/* test_spec.c: the pool spec: every kind of bad input with its exact message, examples, defaults, names, hash. */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/spec.h"
#include "vp_test.h"

/* A valid spec of exactly 10 lines: text appended to it starts at line 11. */
#define BASE                                                                                       \
	"pool:\n"                                                                                  \
	"  name: ci\n"                                                                             \
	"base:\n"                                                                                  \
	"  name: tiny\n"                                                                           \
	"storage:\n"                                                                               \
	"  tiers:\n"                                                                               \
	"    - name: t\n"                                                                          \
	"      path: /var/lib/vdipool\n"                                                           \
	"clones:\n"                                                                                \
	"  count: 3\n"

/* BASE without its clones section (8 lines). */
#define BASE8                                                                                      \
	"pool:\n"                                                                                  \
	"  name: ci\n"                                                                             \
	"base:\n"                                                                                  \
	"  name: tiny\n"                                                                           \
	"storage:\n"                                                                               \
	"  tiers:\n"                                                                               \
	"    - name: t\n"                                                                          \
	"      path: /var/lib/vdipool\n"

/* BASE before its storage section (4 lines). */
#define BASE4                                                                                      \
	"pool:\n"                                                                                  \
	"  name: ci\n"                                                                             \
	"base:\n"                                                                                  \
	"  name: tiny\n"

#define CLONES "clones:\n  count: 3\n"

/* BASE with its one tier on Ceph (11 lines). */
#define RBD11                                                                                      \
	"pool:\n"                                                                                  \
	"  name: ci\n"                                                                             \
	"base:\n"                                                                                  \
	"  name: tiny\n"                                                                           \
	"storage:\n"                                                                               \
	"  tiers:\n"                                                                               \
	"    - name: t\n"                                                                          \
	"      driver: rbd\n"                                                                      \
	"      pool: vdi\n"                                                                        \
	"clones:\n"                                                                                \
	"  count: 3\n"

#define RADOS_RULE "must be 1-100 characters of A-Z, a-z, 0-9, '_', '.' and '-', not starting with '.'"
#define RBD_NO_PATH "an rbd tier has no path; it names a RADOS pool with 'pool'"
#define QCOW2_ON_RBD \
	"qcow2 delta settings do not apply to an rbd delta tier: tier 't' makes RBD clones (drop the key)"

#define NAME_RULE "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"

typedef struct bad_case {
	const char *yaml;
	size_t len; /* 0: strlen(yaml) */
	const char *msg;
} bad_case;

static const bad_case bad_cases[] = {
	/* ---- bytes ---- */
	{ "", 0, "pool.yaml:1:1: the file is empty" },
	{ "  \n\n \n", 0, "pool.yaml:1:1: the file is empty" },
	{ "# only\n# comments\n", 0, "pool.yaml:1:1: no yaml content, the file holds only comments" },
	{ "\x00\x01\x02garbage\xff", 11, "pool.yaml:1:1: nul byte found, the spec must be text" },
	{ "pool:\n  name: ab\xff\n", 0, "pool.yaml:2:11: invalid utf-8 byte 0xff, the spec must be utf-8 text" },
	{ "pool:\n  name: \xc3\xa9\xc3\n", 0, "pool.yaml:2:10: invalid utf-8 byte 0xc3, the spec must be utf-8 text" },
	{ "pool: \xc0\xaf\n", 0, "pool.yaml:1:7: invalid utf-8 byte 0xc0, the spec must be utf-8 text" },
	{ "pool: \xed\xa0\x80\n", 0, "pool.yaml:1:7: invalid utf-8 byte 0xed, the spec must be utf-8 text" },
	{ "pool: a\x07\n", 0, "pool.yaml:1:8: control character 0x07 is not allowed" },
	{ "pool:\r\n  name: a\x1b\r\n", 0, "pool.yaml:2:10: control character 0x1b is not allowed" },
	{ "pool: \"\\0\"\n", 0, "pool.yaml:1:7: pool: strings must not contain nul characters" },

	/* ---- syntax ---- */
	{ "pool:\n\tname: x\n", 0, "pool.yaml:2:1: tab character found, indent with spaces" },
	{ "pool:\n  name: \"abc\nbase: 1\n", 0, "pool.yaml:2:9: unclosed quote: the string that starts here never ends" },
	{ "pool: 'abc\n", 0, "pool.yaml:1:7: unclosed quote: the string that starts here never ends" },
	{ "pool: {name: a}}\n", 0,
	  "pool.yaml:1:16: expected a key, check the indentation (in the mapping that starts at line 1, column 1)" },
	{ "pool: [a, b\n", 0,
	  "pool.yaml:2:1: did not find expected ',' or ']' (in the list that starts at line 1, column 7)" },
	{ "pool:\n  name: a\n    b: c\n", 0, "pool.yaml:3:6: unexpected ':', check the indentation or quote the value" },
	{ "pool: @x\n", 0, "pool.yaml:1:7: character '@' cannot start a value, quote the value" },
	{ "- a\nb: c\n", 0,
	  "pool.yaml:2:1: expected a '-' list item, check the indentation (in the list that starts at line 1, column 1)" },
	{ "pool: \"a\\q\"\n", 0,
	  "pool.yaml:1:9: unknown escape sequence in a double-quoted string, use single quotes to keep backslashes "
	  "(while parsing a quoted scalar that starts at line 1, column 7)" },
	{ "%YAML 2.0\n---\na: 1\n", 0, "pool.yaml:1:1: found incompatible yaml document" },

	/* ---- structure ---- */
	{ "pool: {name: a}\n---\npool: {name: b}\n", 0,
	  "pool.yaml:2:1: only one yaml document is allowed, this is a second one" },
	{ "pool: &x {name: a}\nbase: *x\n", 0,
	  "pool.yaml:1:7: pool: yaml anchors are not allowed (found '&x'), write the value out" },
	{ "pool: *x\n", 0, "pool.yaml:1:7: pool: yaml aliases are not allowed (found '*x'), write the value out" },
	{ "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", 0,
	  "pool.yaml:1:4: a: yaml anchors are not allowed (found '&a'), write the value out" },
	{ "pool: !!python/object {name: a}\n", 0,
	  "pool.yaml:1:7: pool: yaml tags are not allowed (found '!!python/object')" },
	{ "pool:\n  name: !!str ci\n", 0, "pool.yaml:2:9: pool.name: yaml tags are not allowed (found '!!str')" },
	{ "pool:\n  name: a\n  name: b\n", 0,
	  "pool.yaml:3:3: pool: duplicate key 'name', first defined at line 2, column 3" },
	{ BASE "clones:\n  count: 4\n", 0,
	  "pool.yaml:11:1: duplicate key 'clones', first defined at line 9, column 1" },
	{ "pool: {name: a, name: a}\n", 0,
	  "pool.yaml:1:17: pool: duplicate key 'name', first defined at line 1, column 8" },
	{ "? [a]\n: 1\n", 0, "pool.yaml:1:3: mapping keys must be strings, got a sequence" },
	{ "[1, 2]\n", 0, "pool.yaml:1:1: expected a mapping of spec sections at the top level, got a sequence" },
	{ "hello\n", 0, "pool.yaml:1:1: expected a mapping of spec sections at the top level, got 'hello'" },
	{ "---\n", 0, "pool.yaml:2:1: expected a mapping of spec sections at the top level, got null" },

	/* ---- unknown and missing keys ---- */
	{ BASE8 "clones:\n  cont: 3\n", 0, "pool.yaml:10:3: clones: unknown key 'cont', did you mean 'count'?" },
	{ BASE "clone:\n  count: 1\n", 0, "pool.yaml:11:1: unknown key 'clone', did you mean 'clones'?" },
	{ BASE "extras: 1\n", 0,
	  "pool.yaml:11:1: unknown key 'extras', expected one of: pool, base, storage, clones, delta, data_disk, "
	  "domain, rollout, hosts, gc, placement, distribution, readiness" },
	{ BASE "gc:\n  kep: 1\n", 0, "pool.yaml:12:3: gc: unknown key 'kep', did you mean 'keep'?" },
	{ BASE8 "clones:\n  start_index: 2\n", 0, "pool.yaml:9:1: clones: missing required key 'count'" },
	{ BASE8 "clones:\n  count: 2\n  spares: 1001\n", 0,
	  "pool.yaml:11:11: clones.spares: must be between 0 and 1000, got 1001" },
	{ BASE8 "clones:\n  count: 1\n  name: solo\n  spares: 2\n", 0,
	  "pool.yaml:11:9: clones.name: must contain '{index}': with clones.spares the pool grows beyond "
	  "clones.count while clones are claimed" },
	{ BASE8 "clones:\n  count: 2\n  spares: 1\n  parked: 2\n", 0,
	  "pool.yaml:12:11: clones.parked: must be at most clones.spares (1), got 2: parked clones are spares "
	  "saved to disk" },
	{ BASE8 "clones:\n  count: 2\n  spares: 1\n  parked: 1\ndomain:\n  start: false\n", 0,
	  "pool.yaml:12:11: clones.parked: needs domain.start: true: a spare is parked once it is booted and ready" },
	{ BASE8 "clones:\n  count: 2\n  spares: 1\n  parked: 1\ndomain:\n  network: none\n", 0,
	  "pool.yaml:12:11: clones.parked: needs a domain.network: a spare is parked once it is booted and ready" },
	{ BASE8, 0, "pool.yaml:1:1: missing required key 'clones'" },
	{ "pool: {}\nbase:\n  name: tiny\n", 0, "pool.yaml:1:1: pool: missing required key 'name'" },
	{ "pool:\n  name: ci\nbase:\n  version: v1\n", 0, "pool.yaml:3:1: base: missing required key 'name'" },
	{ BASE "hosts:\n  - uri: qemu:///system\n", 0, "pool.yaml:12:5: hosts[0]: missing required key 'name'" },
	{ BASE "data_disk:\n  tier: t\n", 0, "pool.yaml:11:1: data_disk: missing required key 'size'" },

	/* ---- wrong types ---- */
	{ BASE8 "clones:\n  count: abc\n", 0, "pool.yaml:10:10: clones.count: expected an integer, got 'abc'" },
	{ BASE8 "clones:\n  count: \"3\"\n", 0,
	  "pool.yaml:10:10: clones.count: expected an integer, got the quoted string '3', drop the quotes" },
	{ BASE8 "clones:\n  count: 1.5\n", 0, "pool.yaml:10:10: clones.count: expected an integer, got '1.5'" },
	{ BASE8 "clones:\n  count: 010\n", 0,
	  "pool.yaml:10:10: clones.count: expected an integer without leading zeros, got '010'" },
	{ BASE8 "clones:\n  count: 0x10\n", 0, "pool.yaml:10:10: clones.count: expected an integer, got '0x10'" },
	{ BASE8 "clones:\n  count:\n", 0, "pool.yaml:10:9: clones.count: expected an integer, got null" },
	{ BASE8 "clones:\n  count: [1]\n", 0, "pool.yaml:10:10: clones.count: expected an integer, got a sequence" },
	{ BASE8 "clones: 5\n", 0, "pool.yaml:9:9: clones: expected a mapping, got '5'" },
	{ BASE8 "clones:\n  - count: 5\n", 0, "pool.yaml:10:3: clones: expected a mapping, got a sequence" },
	{ BASE "gc:\n", 0, "pool.yaml:11:4: gc: expected a mapping, got null" },
	{ BASE4 "storage:\n  tiers:\n    name: t\n", 0,
	  "pool.yaml:7:5: storage.tiers: expected a sequence, got a mapping" },
	{ BASE "delta:\n  extended_l2: yes\n", 0, "pool.yaml:12:16: delta.extended_l2: expected true or false, got 'yes'" },
	{ BASE8 "clones:\n  count: 1\n  warm_base: on\n", 0,
	  "pool.yaml:11:14: clones.warm_base: expected true or false, got 'on'" },
	{ BASE "domain:\n  start: \"true\"\n", 0,
	  "pool.yaml:12:10: domain.start: expected true or false, got the quoted string 'true', drop the quotes" },
	{ BASE "rollout:\n  health:\n    command: {run: x}\n", 0,
	  "pool.yaml:13:14: rollout.health.command: expected a command (a list of arguments or a string), got a "
	  "mapping" },
	{ BASE "rollout:\n  health:\n    command: \"  \"\n", 0,
	  "pool.yaml:13:14: rollout.health.command: must not be empty" },
	{ BASE "rollout:\n  health:\n    command: []\n", 0,
	  "pool.yaml:13:14: rollout.health.command: must have 1 to 256 items, got 0" },
	{ BASE "rollout:\n  health:\n    command: [ls, {a: 1}]\n", 0,
	  "pool.yaml:13:19: rollout.health.command[1]: expected a string, got a mapping" },
	{ BASE "readiness:\n  command: {run: x}\n", 0,
	  "pool.yaml:12:12: readiness.command: expected a command (a list of arguments or a string), got a "
	  "mapping" },
	{ BASE "readiness:\n  command: []\n", 0,
	  "pool.yaml:12:12: readiness.command: must have 1 to 256 items, got 0" },
	{ BASE "readiness:\n  timeout: 2h\n", 0,
	  "pool.yaml:12:12: readiness.timeout: must be between 1s and 1h, got '2h'" },
	{ BASE "readiness:\n  timeout: 0\n", 0,
	  "pool.yaml:12:12: readiness.timeout: must be between 1s and 1h, got '0'" },
	{ BASE "readiness:\n  comand: [true]\n", 0,
	  "pool.yaml:12:3: readiness: unknown key 'comand', did you mean 'command'?" },
	{ BASE "readiness: true\n", 0, "pool.yaml:11:12: readiness: expected a mapping, got 'true'" },

	/* ---- numbers out of range ---- */
	{ BASE8 "clones:\n  count: -3\n", 0, "pool.yaml:10:10: clones.count: must be between 1 and 10000, got -3" },
	{ BASE8 "clones:\n  count: 10001\n", 0, "pool.yaml:10:10: clones.count: must be between 1 and 10000, got 10001" },
	{ BASE8 "clones:\n  count: 99999999999999999999\n", 0,
	  "pool.yaml:10:10: clones.count: must be between 1 and 10000, got 99999999999999999999" },
	{ BASE "domain:\n  vcpus: 0\n", 0, "pool.yaml:12:10: domain.vcpus: must be between 1 and 256, got 0" },
	{ BASE "domain:\n  vcpus: 257\n", 0, "pool.yaml:12:10: domain.vcpus: must be between 1 and 256, got 257" },
	{ BASE "domain:\n  max_parallel_starts: 0\n", 0,
	  "pool.yaml:12:24: domain.max_parallel_starts: must be between 1 and 1000, got 0" },
	{ BASE "gc:\n  keep: 1001\n", 0, "pool.yaml:12:9: gc.keep: must be between 0 and 1000, got 1001" },
	{ BASE "gc:\n  keep: -1\n", 0, "pool.yaml:12:9: gc.keep: must be between 0 and 1000, got -1" },
	{ BASE "hosts:\n  - name: a\n    ssh:\n      port: 70000\n", 0,
	  "pool.yaml:14:13: hosts[0].ssh.port: must be between 1 and 65535, got 70000" },

	/* ---- sizes and durations ---- */
	{ BASE "domain:\n  memory: 8M\n", 0, "pool.yaml:12:11: domain.memory: must be between 16M and 4T, got '8M'" },
	{ BASE "domain:\n  memory: 16385K\n", 0, "pool.yaml:12:11: domain.memory: must be a multiple of 1M, got '16385K'" },
	{ BASE "domain:\n  memory: lots\n", 0,
	  "pool.yaml:12:11: domain.memory: expected a size like '512M' or '20G', got 'lots'" },
	{ BASE "data_disk:\n  size: 512K\n", 0, "pool.yaml:12:9: data_disk.size: must be between 1M and 64T, got '512K'" },
	{ BASE "data_disk:\n  size: 65T\n", 0, "pool.yaml:12:9: data_disk.size: must be between 1M and 64T, got '65T'" },
	{ BASE "delta:\n  cluster_size: 96K\n", 0,
	  "pool.yaml:12:17: delta.cluster_size: must be a power of two from 16K to 2M, got '96K'" },
	{ BASE "delta:\n  cluster_size: 4M\n", 0,
	  "pool.yaml:12:17: delta.cluster_size: must be a power of two from 16K to 2M, got '4M'" },
	{ BASE "delta:\n  cluster_size: 8K\n", 0,
	  "pool.yaml:12:17: delta.cluster_size: must be a power of two from 16K to 2M, got '8K'" },
	{ BASE "rollout:\n  health:\n    timeout: 2h\n", 0,
	  "pool.yaml:13:14: rollout.health.timeout: must be between 1s and 1h, got '2h'" },
	{ BASE "rollout:\n  health:\n    timeout: soon\n", 0,
	  "pool.yaml:13:14: rollout.health.timeout: expected a duration like '30s', '5m' or '1h', or seconds, got "
	  "'soon'" },
	{ BASE "rollout:\n  shutdown_timeout: 0\n", 0,
	  "pool.yaml:12:21: rollout.shutdown_timeout: must be between 1s and 1h, got '0'" },
	{ BASE "rollout:\n  max_unavailable: \"0%\"\n", 0,
	  "pool.yaml:12:20: rollout.max_unavailable: must be a percentage from 1% to 100%, got '0%'" },
	{ BASE "rollout:\n  max_unavailable: 150%\n", 0,
	  "pool.yaml:12:20: rollout.max_unavailable: must be a percentage from 1% to 100%, got '150%'" },
	{ BASE "rollout:\n  max_unavailable: 0\n", 0,
	  "pool.yaml:12:20: rollout.max_unavailable: must be between 1 and 10000, got 0" },
	{ BASE "rollout:\n  max_unavailable: \"half\"\n", 0,
	  "pool.yaml:12:20: rollout.max_unavailable: expected a count of at least 1 or a percentage like '25%', got "
	  "'half'" },

	/* ---- enums ---- */
	{ BASE8 "clones:\n  count: 3\n  mode: thin\n", 0,
	  "pool.yaml:11:9: clones.mode: must be 'linked' or 'full', got 'thin'" },
	{ BASE "domain:\n  accel: hvf\n", 0,
	  "pool.yaml:12:10: domain.accel: must be 'auto', 'kvm' or 'tcg', got 'hvf'" },
	{ BASE "domain:\n  accel: KVM\n", 0,
	  "pool.yaml:12:10: domain.accel: must be 'auto', 'kvm' or 'tcg', got 'KVM'" },
	{ BASE "delta:\n  preallocation: full\n", 0,
	  "pool.yaml:12:18: delta.preallocation: must be 'off' or 'metadata', got 'full'" },
	{ BASE "delta:\n  preallocation: metadata\n  extended_l2: false\n", 0,
	  "pool.yaml:12:18: delta.preallocation: 'metadata' needs extended_l2: true, qemu refuses preallocation with "
	  "a backing file otherwise" },

	/* ---- names, versions, paths ---- */
	{ "pool:\n  name: CI_pool\n", 0, "pool.yaml:2:9: pool.name: " NAME_RULE ", got 'CI_pool'" },
	{ "pool:\n  name: -ci\n", 0, "pool.yaml:2:9: pool.name: " NAME_RULE ", got '-ci'" },
	{ "pool:\n  name: a234567890123456789012345678901234567890123456789012345678901234\n", 0,
	  "pool.yaml:2:9: pool.name: " NAME_RULE ", got 'a234567890123456789012345678901234567890123456789012345678901234'" },
	{ "pool:\n  name:\n", 0, "pool.yaml:2:8: pool.name: expected a name, got null" },
	{ "pool:\n  name: ci\nbase:\n  name: Tiny\n", 0, "pool.yaml:4:9: base.name: " NAME_RULE ", got 'Tiny'" },
	{ "pool:\n  name: ci\nbase:\n  name: tiny\n  version: v1/../x\n", 0,
	  "pool.yaml:5:12: base.version: must be 'latest' or 1-64 characters of A-Z, a-z, 0-9, '.', '_', '+' and "
	  "'-', not starting with '.' and without '..', got 'v1/../x'" },
	{ "pool:\n  name: ci\nbase:\n  name: tiny\n  version: .hidden\n", 0,
	  "pool.yaml:5:12: base.version: must be 'latest' or 1-64 characters of A-Z, a-z, 0-9, '.', '_', '+' and "
	  "'-', not starting with '.' and without '..', got '.hidden'" },
	{ "pool:\n  name: ci\nbase:\n  name: tiny\n  version: \"1 2\"\n", 0,
	  "pool.yaml:5:12: base.version: must be 'latest' or 1-64 characters of A-Z, a-z, 0-9, '.', '_', '+' and "
	  "'-', not starting with '.' and without '..', got '1 2'" },
	{ "pool:\n  name: ci\nbase:\n  name: tiny\n  version: \"v\\t1\"\n", 0,
	  "pool.yaml:5:12: base.version: must be 'latest' or 1-64 characters of A-Z, a-z, 0-9, '.', '_', '+' and "
	  "'-', not starting with '.' and without '..', got 'v\\x091'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      path: var/lib\n", 0,
	  "pool.yaml:8:13: storage.tiers[0].path: must be an absolute path, got 'var/lib'" },
	{ BASE4 "storage:\n  tiers:\n    - name: T1\n      path: /a\n", 0,
	  "pool.yaml:7:13: storage.tiers[0].name: " NAME_RULE ", got 'T1'" },
	{ BASE "hosts:\n  - name: a\n    ssh:\n      known_hosts: .ssh/known_hosts\n", 0,
	  "pool.yaml:14:20: hosts[0].ssh.known_hosts: must be an absolute path, got '.ssh/known_hosts'" },
	{ BASE "hosts:\n  - name: a\n    ssh:\n      prot: 22\n", 0,
	  "pool.yaml:14:7: hosts[0].ssh: unknown key 'prot', did you mean 'port'?" },
	{ BASE "hosts:\n  - name: a\n    ssh:\n      user: -root\n", 0,
	  "pool.yaml:14:13: hosts[0].ssh.user: must be a user name of 1-32 letters, digits, '.', '_' and '-', not "
	  "starting with '-', got '-root'" },
	/* ---- where a host's storage is: SSH for a remote host ---- */
	{ BASE "hosts:\n  - name: a\n  - name: hv2\n    uri: qemu+ssh://hv2.example.com/system\n", 0,
	  "pool.yaml:14:10: hosts[1].uri: host 'hv2' is remote ('qemu+ssh://hv2.example.com/system'): its storage "
	  "is reached over SSH, which needs an 'ssh' mapping (write 'ssh: {}' for the defaults: host from the uri, "
	  "port 22, keys of ssh-agent)" },
	{ BASE "hosts:\n  - name: a\n    ssh:\n      port: 2222\n", 0,
	  "pool.yaml:13:5: hosts[0].ssh: host 'a': 'host' is required: the uri 'qemu:///system' names no host to "
	  "SSH to" },
	{ BASE "hosts:\n  - name: a\n    uri: qemu+ssh://h/system\n    ssh:\n      host: -oProxyCommand=x\n", 0,
	  "pool.yaml:15:13: hosts[0].ssh.host: must be a host name or IP address (1-253 of letters, digits, '.', "
	  "'-', '_' and ':', IPv6 without brackets), got '-oProxyCommand=x'" },
	{ BASE "hosts:\n  - name: a\n    uri: qemu+ssh://h/system\n    ssh:\n      identity: id_ed25519\n", 0,
	  "pool.yaml:15:17: hosts[0].ssh.identity: must be an absolute path, got 'id_ed25519'" },
	{ BASE "hosts:\n  - name: a\n    uri: qemu+ssh://h%20x/system\n    ssh: {}\n", 0,
	  "pool.yaml:13:10: hosts[0].uri: host 'a': the uri's host part is no address to SSH to; set ssh.host" },
	{ BASE "hosts:\n  - name: a\n  - name: b\n    uri: localhost\n", 0,
	  "pool.yaml:14:10: hosts[1].uri: must be a libvirt uri like 'qemu:///system', got 'localhost'" },
	{ BASE "hosts:\n  - name: a\n  - name: b\n  - name: a\n", 0,
	  "pool.yaml:14:11: hosts[2].name: duplicate host name 'a', first used at line 12, column 11" },
	{ BASE "hosts: []\n", 0, "pool.yaml:11:8: hosts: must have 1 to 1000 items, got 0" },
	{ BASE "domain:\n  network: \"my net\"\n", 0,
	  "pool.yaml:12:12: domain.network: must be a libvirt network name (1-64 characters, no spaces or '/') or "
	  "'none', got 'my net'" },

	/* ---- storage tiers ---- */
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: nfs\n      path: /a\n", 0,
	  "pool.yaml:8:15: storage.tiers[0].driver: must be 'dir' or 'rbd', got 'nfs'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n" CLONES, 0,
	  "pool.yaml:7:7: storage.tiers[0]: missing required key 'path'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      path: /a\n      pol: p\n", 0,
	  "pool.yaml:9:7: storage.tiers[0]: unknown key 'pol', did you mean 'pool'?" },

	/* ---- rbd tiers: keys of one driver on the other, checked once the item is read ---- */
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: p\n      path: /a\n", 0,
	  "pool.yaml:10:13: storage.tiers[0].path: " RBD_NO_PATH },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      path: /a\n      pool: p\n      driver: rbd\n", 0,
	  "pool.yaml:8:13: storage.tiers[0].path: " RBD_NO_PATH },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n" CLONES, 0,
	  "pool.yaml:7:7: storage.tiers[0]: missing required key 'pool', the RADOS pool an rbd tier keeps its images in" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      path: /a\n      pool: p\n", 0,
	  "pool.yaml:9:13: storage.tiers[0].pool: a dir tier has no 'pool', it is a key of rbd tiers (driver: rbd); a dir "
	  "tier keeps its images under 'path'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      keyring: /k\n      driver: dir\n      path: /a\n", 0,
	  "pool.yaml:8:16: storage.tiers[0].keyring: a dir tier has no 'keyring', it is a key of rbd tiers (driver: rbd); "
	  "a dir tier keeps its images under 'path'" },
	{ BASE4 "storage:\n  tiers:\n    - {name: t, path: /a, namespace: x, conf: /c, id: u}\n", 0,
	  "pool.yaml:7:38: storage.tiers[0].namespace: a dir tier has no 'namespace', it is a key of rbd tiers (driver: "
	  "rbd); a dir tier keeps its images under 'path'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: .hidden\n", 0,
	  "pool.yaml:9:13: storage.tiers[0].pool: " RADOS_RULE ", got '.hidden'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: a/b\n", 0,
	  "pool.yaml:9:13: storage.tiers[0].pool: " RADOS_RULE ", got 'a/b'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: ''\n", 0,
	  "pool.yaml:9:13: storage.tiers[0].pool: " RADOS_RULE ", got ''" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool:\n", 0,
	  "pool.yaml:9:12: storage.tiers[0].pool: expected a RADOS name, got null" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: p\n      namespace: a:b\n", 0,
	  "pool.yaml:10:18: storage.tiers[0].namespace: " RADOS_RULE ", got 'a:b'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: p\n      id: client.vdipool\n", 0,
	  "pool.yaml:10:11: storage.tiers[0].id: must be the cephx user without 'client.' (librados adds it): write "
	  "'vdipool', not 'client.vdipool'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: p\n      id: client.\n", 0,
	  "pool.yaml:10:11: storage.tiers[0].id: must be the cephx user without 'client.' (librados adds it), got "
	  "'client.'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: p\n      id: ad min\n", 0,
	  "pool.yaml:10:11: storage.tiers[0].id: " RADOS_RULE ", got 'ad min'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: p\n      conf: ceph.conf\n", 0,
	  "pool.yaml:10:13: storage.tiers[0].conf: must be an absolute path, got 'ceph.conf'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: p\n      keyring: ./k\n", 0,
	  "pool.yaml:10:16: storage.tiers[0].keyring: must be an absolute path, got './k'" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      path: /a\n  state_dir: state\n" CLONES, 0,
	  "pool.yaml:9:14: storage.state_dir: must be an absolute path, got 'state'" },

	/* ---- mixed tiers: how a delta is made from its base ---- */
	{ BASE4 "storage:\n  tiers:\n    - {name: a, path: /a}\n    - {name: b, driver: rbd, pool: p}\n"
		"  bases: a\n  deltas: b\n" CLONES, 0,
	  "pool.yaml:10:11: storage.deltas: RBD clones are made from RBD snapshots: a delta tier with driver rbd needs "
	  "the bases tier on rbd too (tier 'a' is a dir tier)" },
	{ BASE4 "storage:\n  tiers:\n    - {name: a, path: /a}\n    - {name: b, driver: rbd, pool: p}\n"
		"  bases: b\n  deltas: a\n" CLONES, 0,
	  "pool.yaml:10:11: storage.deltas: a qcow2 delta on a dir tier cannot be backed by an RBD snapshot: put deltas "
	  "on an rbd tier, or bases on a dir tier (tier 'b' is an rbd tier)" },
	{ BASE4 "storage:\n  deltas: a\n  bases: b\n  tiers:\n"
		"    - {pool: p, driver: rbd, name: b}\n    - {path: /a, name: a}\n" CLONES, 0,
	  "pool.yaml:6:11: storage.deltas: a qcow2 delta on a dir tier cannot be backed by an RBD snapshot: put deltas "
	  "on an rbd tier, or bases on a dir tier (tier 'b' is an rbd tier)" },
	{ BASE4 "storage:\n  tiers:\n    - {name: a, driver: rbd, pool: p}\n"
		"    - {name: b, driver: rbd, pool: q, conf: /etc/ceph/other.conf}\n  bases: a\n  deltas: b\n" CLONES, 0,
	  "pool.yaml:10:11: storage.deltas: an RBD clone lives in the cluster of its parent snapshot: tiers 'a' and 'b' "
	  "name different clusters (conf '/etc/ceph/ceph.conf' and '/etc/ceph/other.conf')" },
	{ RBD11 "hosts:\n  - name: a\n  - name: b\n    uri: qemu+ssh://b/system\n    ssh: { host: b }\n", 0,
	  "pool.yaml:12:1: hosts: a pool whose disks are on an rbd tier runs on one host for now (this spec has 2); "
	  "use one pool per host, or dir tiers for a pool over many hosts" },
	{ BASE4 "storage:\n  tiers:\n    - {name: a, driver: rbd, pool: p, namespace: vdi}\n" CLONES, 0,
	  "pool.yaml:7:50: storage.tiers[0].namespace: tier 'a' holds clone disks, which domains open through "
	  "libvirt, and libvirt cannot pass an RBD namespace to QEMU: keep namespaces to the bases tier" },
	{ BASE4 "storage:\n  tiers:\n    - {name: a, driver: rbd, pool: p}\n    - {name: b, driver: rbd, pool: q, id: x}\n"
		"  bases: a\n  deltas: a\n" CLONES "data_disk:\n  size: 1G\n  tier: b\n", 0,
	  "pool.yaml:8:43: storage.tiers[1].id: a clone's disks authenticate as one cephx user: tiers 'a' (deltas) "
	  "and 'b' (data disks) must have the same id and keyring" },
	{ RBD11 "delta:\n  max_depth: 4\n  cluster_size: 64K\n", 0,
	  "pool.yaml:14:17: delta.cluster_size: " QCOW2_ON_RBD },
	{ RBD11 "delta:\n  extended_l2: false\n", 0, "pool.yaml:13:16: delta.extended_l2: " QCOW2_ON_RBD },
	{ RBD11 "delta:\n  preallocation: off\n  cluster_size: 64K\n", 0,
	  "pool.yaml:13:18: delta.preallocation: " QCOW2_ON_RBD },
	{ "delta:\n  extended_l2: true\n" RBD11, 0, "pool.yaml:2:16: delta.extended_l2: " QCOW2_ON_RBD },
	{ BASE "delta:\n  size: 512K\n", 0, "pool.yaml:12:9: delta.size: must be between 1M and 64T, got '512K'" },
	{ BASE "delta:\n  size: 65T\n", 0, "pool.yaml:12:9: delta.size: must be between 1M and 64T, got '65T'" },
	{ BASE "delta:\n  size: 1048577\n", 0,
	  "pool.yaml:12:9: delta.size: must be a multiple of 512, got '1048577'" },
	{ RBD11 "delta:\n  size: 20G\n", 0,
	  "pool.yaml:13:9: delta.size: an RBD clone has its parent snapshot's size: tier 't' makes RBD clones "
	  "(drop the key, or put deltas on a dir tier)" },
	{ BASE "  mode: full\ndelta:\n  size: 20G\n  cluster_size: 64K\n", 0,
	  "pool.yaml:14:17: delta.cluster_size: qcow2 delta settings do not apply to full clones: "
	  "clones.mode 'full' copies the base with its own layout (drop the key)" },
	{ BASE "  mode: full\ndelta:\n  preallocation: off\n", 0,
	  "pool.yaml:13:18: delta.preallocation: qcow2 delta settings do not apply to full clones: "
	  "clones.mode 'full' copies the base with its own layout (drop the key)" },
	{ BASE "delta:\n  encrypt: yes\n", 0, "pool.yaml:12:12: delta.encrypt: must be 'none' or 'luks', got 'yes'" },
	{ BASE "  mode: full\ndelta:\n  encrypt: luks\n", 0,
	  "pool.yaml:13:12: delta.encrypt: 'luks' is for linked clones: clones.mode 'full' copies the base as it "
	  "is (drop one of the keys)" },
	{ RBD11 "delta:\n  encrypt: luks\n", 0,
	  "pool.yaml:13:12: delta.encrypt: 'luks' encrypts qcow2 disks on dir tiers: tier 't' is rbd (drop the "
	  "key, or put deltas and data disks on dir tiers)" },
	{ BASE "delta:\n  encrypt: luks\nhosts:\n  - name: a\n    uri: qemu+ssh://a/system\n    ssh: {}\n", 0,
	  "pool.yaml:12:12: delta.encrypt: 'luks' needs the pool's disks and libvirt on this machine: host 'a' is "
	  "reached over SSH (its keys would have to cross the network)" },
	{ BASE "delta:\n  max_depth: 0\n", 0, "pool.yaml:12:14: delta.max_depth: must be between 1 and 16, got 0" },
	{ BASE "delta:\n  max_depth: 17\n", 0, "pool.yaml:12:14: delta.max_depth: must be between 1 and 16, got 17" },
	{ BASE4 "storage:\n  tiers:\n    - name: t\n      path: /a\n  bases: fast\n" CLONES, 0,
	  "pool.yaml:9:10: storage.bases: unknown tier 'fast', the tiers are 't'" },
	{ BASE4 "storage:\n  tiers:\n    - {name: a, path: /a}\n    - {name: b, path: /b}\n  bases: a\n" CLONES, 0,
	  "pool.yaml:5:1: storage: missing required key 'deltas', needed when there is more than one tier" },
	{ BASE4 "storage:\n  tiers:\n    - {name: a, path: /a}\n    - {name: a, path: /b}\n" CLONES, 0,
	  "pool.yaml:8:14: storage.tiers[1].name: duplicate tier name 'a', first used at line 7, column 14" },
	{ BASE4 "storage:\n  tiers: []\n", 0, "pool.yaml:6:10: storage.tiers: must have 1 to 16 items, got 0" },
	{ BASE "data_disk:\n  size: 20G\n  tier: slow\n", 0,
	  "pool.yaml:13:9: data_disk.tier: unknown tier 'slow', the tiers are 't'" },

	/* ---- clone names ---- */
	{ BASE8 "clones:\n  count: 3\n  name: ci-{idx}\n", 0,
	  "pool.yaml:11:9: clones.name: unknown placeholder '{idx}', use '{index}', '{index:0N}' (N 1-9) or '{pool}'" },
	{ BASE8 "clones:\n  count: 3\n  name: ci-{index:0}\n", 0,
	  "pool.yaml:11:9: clones.name: unknown placeholder '{index:0}', use '{index}', '{index:0N}' (N 1-9) or "
	  "'{pool}'" },
	{ BASE8 "clones:\n  count: 3\n  name: ci-{index\n", 0,
	  "pool.yaml:11:9: clones.name: unclosed '{' in name pattern 'ci-{index'" },
	{ BASE8 "clones:\n  count: 3\n  name: ci-index}\n", 0,
	  "pool.yaml:11:9: clones.name: unmatched '}' in name pattern 'ci-index}'" },
	{ BASE8 "clones:\n  count: 3\n  name: CI-{index}\n", 0,
	  "pool.yaml:11:9: clones.name: renders 'CI-1' for clone 1, which is not a valid name: " NAME_RULE },
	{ BASE8 "clones:\n  count: 3\n  name: runner\n", 0,
	  "pool.yaml:11:9: clones.name: must contain '{index}' so that the 3 clones get different names" },
	{ BASE8 "clones:\n  count: 100\n  name: a23456789012345678901234567890123456789012345678901234567890-{index}\n",
	  0,
	  "pool.yaml:11:9: clones.name: renders 'a23456789012345678901234567890123456789012345678901234567890-100' "
	  "for clone 100, which is not a valid name: " NAME_RULE },

	/* ---- placement, canary, distribution ---- */
	{ BASE "placement:\n  policy: round-robin\n", 0,
	  "pool.yaml:12:11: placement.policy: must be 'spread' or 'pack', got 'round-robin'" },
	{ BASE "placement: pack\n", 0,
	  "pool.yaml:11:12: placement: expected a mapping, got 'pack': write 'placement: {policy: pack}'" },
	{ BASE "placement: 1\n", 0, "pool.yaml:11:12: placement: expected a mapping, got '1'" },
	{ BASE "placement:\n  polcy: pack\n", 0, "pool.yaml:12:3: placement: unknown key 'polcy', did you mean 'policy'?" },
	{ BASE "placement:\n  cpu_overcommit: 65\n", 0,
	  "pool.yaml:12:19: placement.cpu_overcommit: must be between 0.1 and 64.0, got '65'" },
	{ BASE "placement:\n  memory_overcommit: 0.05\n", 0,
	  "pool.yaml:12:22: placement.memory_overcommit: must be between 0.1 and 64.0, got '0.05'" },
	{ BASE "placement:\n  cpu_overcommit: 1.2345\n", 0,
	  "pool.yaml:12:19: placement.cpu_overcommit: expected a decimal number like '1.5' (at most 3 decimals), got "
	  "'1.2345'" },
	{ BASE "placement:\n  cpu_overcommit: \"4.0\"\n", 0,
	  "pool.yaml:12:19: placement.cpu_overcommit: expected a decimal number like '1.5', got the quoted string "
	  "'4.0', drop the quotes" },
	{ BASE "placement:\n  cpu_overcommit: 4.\n", 0,
	  "pool.yaml:12:19: placement.cpu_overcommit: expected a decimal number like '1.5' (at most 3 decimals), got "
	  "'4.'" },
	{ BASE "placement:\n  cpu_overcommit: .5\n", 0,
	  "pool.yaml:12:19: placement.cpu_overcommit: expected a decimal number like '1.5' (at most 3 decimals), got "
	  "'.5'" },
	{ BASE "placement:\n  cpu_overcommit: -1.0\n", 0,
	  "pool.yaml:12:19: placement.cpu_overcommit: expected a decimal number like '1.5' (at most 3 decimals), got "
	  "'-1.0'" },
	{ BASE "placement:\n  memory_overcommit: 1e3\n", 0,
	  "pool.yaml:12:22: placement.memory_overcommit: expected a decimal number like '1.5' (at most 3 decimals), "
	  "got '1e3'" },
	{ BASE "placement:\n  cpu_overcommit: 99999999999999999999\n", 0,
	  "pool.yaml:12:19: placement.cpu_overcommit: expected a decimal number like '1.5' (at most 3 decimals), got "
	  "'99999999999999999999'" },
	{ BASE "hosts:\n  - name: a\n    max_clones: -1\n", 0,
	  "pool.yaml:13:17: hosts[0].max_clones: must be between 0 and 10000, got -1" },
	{ BASE "hosts:\n  - name: a\n  - name: b\n    max_clones: 10001\n", 0,
	  "pool.yaml:14:17: hosts[1].max_clones: must be between 0 and 10000, got 10001" },
	{ BASE "hosts:\n  - name: a\n    max_clones: unlimited\n", 0,
	  "pool.yaml:13:17: hosts[0].max_clones: expected an integer, got 'unlimited'" },
	{ BASE "hosts:\n  - name: a\n    cpu_overcommit: 0\n", 0,
	  "pool.yaml:13:21: hosts[0].cpu_overcommit: must be between 0.1 and 64.0, got '0'" },
	{ BASE "hosts:\n  - name: a\n    memory_overcommit: lots\n", 0,
	  "pool.yaml:13:24: hosts[0].memory_overcommit: expected a decimal number like '1.5' (at most 3 decimals), "
	  "got 'lots'" },
	{ BASE "hosts:\n  - name: a\n    max_clone: 3\n", 0,
	  "pool.yaml:13:5: hosts[0]: unknown key 'max_clone', did you mean 'max_clones'?" },
	{ BASE "rollout:\n  canary: 10001\n", 0, "pool.yaml:12:11: rollout.canary: must be between 0 and 10000, got 10001" },
	{ BASE "rollout:\n  canary: 5%\n", 0, "pool.yaml:12:11: rollout.canary: expected an integer, got '5%'" },
	{ BASE "rollout:\n  canary_pause: 0\n", 0,
	  "pool.yaml:12:17: rollout.canary_pause: must be between 1s and 24h, got '0'" },
	{ BASE "rollout:\n  canary_pause: 25h\n", 0,
	  "pool.yaml:12:17: rollout.canary_pause: must be between 1s and 24h, got '25h'" },
	{ BASE "rollout:\n  canary_pause: manaul\n", 0,
	  "pool.yaml:12:17: rollout.canary_pause: expected 'manual' or a duration like '30m', got 'manaul'" },
	{ BASE "rollout:\n  canary_pause: 5x\n", 0,
	  "pool.yaml:12:17: rollout.canary_pause: expected a duration like '30s', '5m' or '1h', or seconds, got '5x'" },
	{ BASE "rollout:\n  canary_pause:\n", 0,
	  "pool.yaml:12:16: rollout.canary_pause: expected 'manual' or a duration like '30m', got null" },
	{ BASE "distribution:\n  max_parallel_hosts: 0\n", 0,
	  "pool.yaml:12:23: distribution.max_parallel_hosts: must be between 1 and 1000, got 0" },
	{ BASE "distribution:\n  max_parallel_hosts: 1001\n", 0,
	  "pool.yaml:12:23: distribution.max_parallel_hosts: must be between 1 and 1000, got 1001" },
	{ BASE "distribution: 4\n", 0, "pool.yaml:11:15: distribution: expected a mapping, got '4'" },
	{ BASE "distribution:\n  parallel_hosts: 2\n", 0,
	  "pool.yaml:12:3: distribution: unknown key 'parallel_hosts', expected one of: max_parallel_hosts, fanout, seed_vdipool, seed_identity, seed_known_hosts" },
	{ BASE "distribution:\n  seed_identity: id_ed25519\n", 0,
	  "pool.yaml:12:18: distribution.seed_identity: must be an absolute path, got 'id_ed25519'" },
	{ BASE "distribution:\n  fanout: maybe\n", 0,
	  "pool.yaml:12:11: distribution.fanout: expected true or false, got 'maybe'" },

	/* ---- templates ---- */
	{ BASE "domain:\n  template: /nonexistent/x.xml\n", 0,
	  "pool.yaml:12:13: domain.template: template '/nonexistent/x.xml' does not exist" },
	{ BASE "domain:\n  template: /\n", 0, "pool.yaml:12:13: domain.template: template '/' is not a regular file" },
	{ BASE "domain:\n  template: templates/server.xml\n", 0,
	  "pool.yaml:12:13: domain.template: must be a template name (like 'server') or an absolute path, got "
	  "'templates/server.xml'" },
	{ BASE "domain:\n  template: Server\n", 0,
	  "pool.yaml:12:13: domain.template: must be a template name (like 'server') or an absolute path, got "
	  "'Server'" },
};

static const vp_error *expect_bad(const char *display, const char *yaml, size_t len)
{
	vp_spec *s = (vp_spec *)1;
	int r = vp_spec_parse(&s, display, yaml, len);

	CU_ASSERT_EQUAL(r, VP_EINVAL);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(vp_error_last()->klass, VP_ERR_SPEC);
	return vp_error_last();
}

static void test_bad_table(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const bad_case *t = &bad_cases[i];
		const vp_error *e = expect_bad("pool.yaml", t->yaml, t->len ? t->len : strlen(t->yaml));
		if (strcmp(e->message, t->msg) != 0) {
			fprintf(stderr, "\n  case %zu:\n  got      '%s'\n  expected '%s'\n", i, e->message, t->msg);
			CU_FAIL("bad spec message differs");
		}
	}
	CU_ASSERT(sizeof(bad_cases) / sizeof(bad_cases[0]) >= 60);
}

/* ---- generated at run time: huge, deep, wide ---- */

static void test_too_large_buffer(void)
{
	size_t len = 50u * 1024 * 1024;
	char *big = malloc(len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'a', len);
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", big, len)->message,
			 "pool.yaml:1:1: the file is too large (52428800 bytes), the limit is 4 MiB");
	/* One byte over the limit is refused, the limit itself is parsed. */
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", big, VP_SPEC_MAX_BYTES + 1)->message,
			 "pool.yaml:1:1: the file is too large (4194305 bytes), the limit is 4 MiB");
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", big, VP_SPEC_MAX_BYTES)->message,
			 "pool.yaml:1:1: expected a mapping of spec sections at the top level, got 'aaaaaaaaaaaaaaaaaaaaaaaa"
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
	free(big);
}

/* A 50 MB file is refused from its size, before a byte of it is read. */
static void test_too_large_file(void)
{
	char path[] = "/tmp/vp_spec_big_XXXXXX";
	char want[256];
	vp_spec *s = NULL;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 50 * 1024 * 1024), 0); /* sparse: costs no disk */
	close(fd);
	CU_ASSERT_EQUAL(vp_spec_load(&s, path), VP_EINVAL);
	CU_ASSERT_PTR_NULL(s);
	snprintf(want, sizeof(want), "%s:1:1: the file is too large (52428800 bytes), the limit is 4 MiB", path);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	unlink(path);
}

static char *repeat(const char *unit, size_t n, const char *tail)
{
	size_t u = strlen(unit), t = strlen(tail);
	char *s = malloc(u * n + t + 1);

	for (size_t i = 0; i < n; i++)
		memcpy(s + i * u, unit, u);
	memcpy(s + u * n, tail, t + 1);
	return s;
}

static void test_deep_nesting(void)
{
	char *flow = repeat("[", 10000, "\n"), *block = repeat("- ", 10000, "x\n"), *map = repeat("{a: ", 10000, "\n");

	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", flow, strlen(flow))->message,
			 "pool.yaml:1:65: nesting is deeper than 64 levels");
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", block, strlen(block))->message,
			 "pool.yaml:1:129: nesting is deeper than 64 levels");
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", map, strlen(map))->message,
			 "pool.yaml:1:257: nesting is deeper than 64 levels");
	free(flow);
	free(block);
	free(map);
}

/* 64 levels is allowed (the top mapping is one): the limit is the first level too deep. */
static void test_nesting_at_limit(void)
{
	char *open = repeat("[", 64, ""), *close = repeat("]", 64, "");
	char *text = malloc(strlen(open) + strlen(close) + 200);

	sprintf(text, BASE "gc: %s%s\n", open + 1, close + 1);
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", text, strlen(text))->message,
			 "pool.yaml:11:5: gc: expected a mapping, got a sequence");
	sprintf(text, BASE "gc: %s%s\n", open, close);
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", text, strlen(text))->message,
			 "pool.yaml:11:68: nesting is deeper than 64 levels");
	free(open);
	free(close);
	free(text);
}

static void test_too_many_nodes(void)
{
	/* "[1,1,...": the root is node 1, item i (from 0) is node i + 2, at column 2 + 2i. */
	char *items = repeat("1,", 100001, "1]\n"), *wide = malloc(strlen(items) + 2);

	sprintf(wide, "[%s", items);
	free(items);
	VP_ASSERT_STR_EQ(expect_bad("pool.yaml", wide, strlen(wide))->message,
			 "pool.yaml:1:200000: too many yaml nodes, the limit is 100000");
	free(wide);
}

/* ---- fixtures on disk ---- */

static const char *data_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("VP_TEST_DATA");

	if (env)
		return env;
	/* Run by hand (valgrind): find tests/data beside this source file. */
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	*strrchr(dir, '/') = '\0';
	*strrchr(dir, '/') = '\0';
	strcat(dir, "/data");
	return dir;
}

static void expect_load_error(const char *name, const char *suffix)
{
	char path[PATH_MAX], want[PATH_MAX + 512];
	vp_spec *s = NULL;

	snprintf(path, sizeof(path), "%s/spec/%s", data_dir(), name);
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	CU_ASSERT_EQUAL(vp_spec_load(&s, path), VP_EINVAL);
	CU_ASSERT_PTR_NULL(s);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
}

static void test_fixtures(void)
{
	expect_load_error("garbage.bin", ":1:1: invalid utf-8 byte 0x89, the spec must be utf-8 text");
	expect_load_error("utf16.yaml", ":1:1: invalid utf-8 byte 0xff, the spec must be utf-8 text");
	expect_load_error("tabs.yaml", ":7:1: tab character found, indent with spaces");
	expect_load_error("typo.yaml", ":14:3: clones: unknown key 'cont', did you mean 'count'?");
	expect_load_error("two-tiers-bad-ref.yaml", ":13:11: storage.deltas: unknown tier 'slow', the tiers are "
						    "'fast', 'bulk'");
	expect_load_error("billion-laughs.yaml", ":2:4: a: yaml anchors are not allowed (found '&a'), write the "
						 "value out");
}

static void test_load_errors(void)
{
	vp_spec *s = (vp_spec *)1;

	CU_ASSERT_EQUAL(vp_spec_load(&s, "/nonexistent/pool.yaml"), VP_ENOENT);
	CU_ASSERT_PTR_NULL(s);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "cannot open '/nonexistent/pool.yaml': No such file or directory");
	CU_ASSERT_EQUAL(vp_spec_parse(&s, NULL, NULL, 0), VP_EINVAL);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "<input>:1:1: the file is empty");
	CU_ASSERT_EQUAL(vp_spec_load(&s, "/"), VP_EIO);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "cannot read '/': Is a directory");
	vp_spec_free(NULL);
}

/* ---- good specs ---- */

static vp_spec *load_example(const char *name)
{
	char path[PATH_MAX];
	vp_spec *s = NULL;

	snprintf(path, sizeof(path), "%s/../../examples/%s", data_dir(), name);
	if (vp_spec_load(&s, path) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	return s;
}

static vp_spec *parse_ok(const char *yaml)
{
	vp_spec *s = NULL;

	if (vp_spec_parse(&s, "pool.yaml", yaml, strlen(yaml)) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	return s;
}

/* Every default, field by field, on the smallest spec there is. */
static void test_defaults(void)
{
	vp_spec *s = parse_ok(BASE);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->file, "pool.yaml");
	VP_ASSERT_STR_EQ(s->pool, "ci");
	VP_ASSERT_STR_EQ(s->base.name, "tiny");
	CU_ASSERT_PTR_NULL(s->base.version);
	CU_ASSERT_EQUAL(s->storage.tier_count, 1);
	VP_ASSERT_STR_EQ(s->storage.tiers[0].name, "t");
	CU_ASSERT_EQUAL(s->storage.tiers[0].driver, VP_STORAGE_DIR);
	VP_ASSERT_STR_EQ(s->storage.tiers[0].path, "/var/lib/vdipool");
	CU_ASSERT_PTR_EQUAL(s->storage.bases, &s->storage.tiers[0]);
	CU_ASSERT_PTR_EQUAL(s->storage.deltas, &s->storage.tiers[0]);
	CU_ASSERT_EQUAL(s->clones.count, 3);
	VP_ASSERT_STR_EQ(s->clones.name, "{pool}-{index}");
	CU_ASSERT_EQUAL(s->clones.start_index, 1);
	CU_ASSERT_EQUAL(s->clones.mode, VP_CLONE_LINKED);
	CU_ASSERT_EQUAL(s->delta.cluster_size, 128 * 1024);
	CU_ASSERT_EQUAL(s->delta.extended_l2, true);
	CU_ASSERT_EQUAL(s->delta.preallocation, VP_SPEC_PREALLOC_METADATA);
	CU_ASSERT_EQUAL(s->delta.max_depth, 8);
	VP_ASSERT_STR_EQ(s->storage.tiers[0].where, "/var/lib/vdipool");
	VP_ASSERT_STR_EQ(s->storage.state_dir, "/var/lib/vdipool");
	CU_ASSERT_EQUAL(s->data_disk.size, 0);
	CU_ASSERT_PTR_NULL(s->data_disk.tier);
	VP_ASSERT_STR_EQ(s->domain.template_name, "server");
	CU_ASSERT_PTR_NOT_NULL(strstr(s->domain.template_path, "/server.xml"));
	CU_ASSERT_EQUAL(s->domain.template_path[0], '/');
	CU_ASSERT_EQUAL(s->domain.vcpus, 1);
	CU_ASSERT_EQUAL(s->domain.memory_bytes, 512ull << 20);
	VP_ASSERT_STR_EQ(s->domain.network, "default");
	CU_ASSERT_EQUAL(s->domain.start, true);
	CU_ASSERT_EQUAL(s->domain.max_parallel_starts, 4);
	CU_ASSERT_EQUAL(s->domain.accel, VP_SPEC_ACCEL_AUTO);
	CU_ASSERT_EQUAL(s->rollout.max_unavailable, 25);
	CU_ASSERT_EQUAL(s->rollout.max_unavailable_percent, true);
	CU_ASSERT_EQUAL(s->rollout.health.argc, 0);
	CU_ASSERT_PTR_NULL(s->rollout.health.argv);
	CU_ASSERT_EQUAL(s->rollout.health.timeout_sec, 300);
	CU_ASSERT_EQUAL(s->rollout.shutdown_timeout_sec, 120);
	CU_ASSERT_EQUAL(s->host_count, 1);
	CU_ASSERT_EQUAL(s->readiness.argc, 0);
	CU_ASSERT_PTR_NULL(s->readiness.argv);
	CU_ASSERT_EQUAL(s->readiness.timeout_sec, 30);
	VP_ASSERT_STR_EQ(s->hosts[0].name, "local");
	VP_ASSERT_STR_EQ(s->hosts[0].uri, "qemu:///system");
	CU_ASSERT_EQUAL(s->hosts[0].has_ssh, false);
	CU_ASSERT_EQUAL(s->hosts[0].max_clones, VP_SPEC_UNLIMITED);
	CU_ASSERT_EQUAL(s->hosts[0].cpu_overcommit_milli, 4000);
	CU_ASSERT_EQUAL(s->hosts[0].memory_overcommit_milli, 1000);
	CU_ASSERT_EQUAL(s->gc.keep, 2);
	CU_ASSERT_EQUAL(s->placement.policy, VP_SPEC_POLICY_SPREAD);
	CU_ASSERT_EQUAL(s->placement.cpu_overcommit_milli, 4000);
	CU_ASSERT_EQUAL(s->placement.memory_overcommit_milli, 1000);
	CU_ASSERT_EQUAL(s->rollout.canary, 0);
	CU_ASSERT_EQUAL(s->rollout.canary_pause_sec, VP_SPEC_PAUSE_MANUAL);
	CU_ASSERT_EQUAL(s->distribution.max_parallel_hosts, 4);
	vp_spec_free(s);
}

/* Placement keys: decimals, per-host values over the section's, wherever it is written. */
static void test_placement_values(void)
{
	vp_spec *s = parse_ok(BASE "hosts:\n"
				   "  - name: a\n    max_clones: 0\n    cpu_overcommit: 1.5\n"
				   "  - name: b\n    memory_overcommit: 0.125\n"
				   "  - name: c\n    max_clones: 10000\n    cpu_overcommit: 64\n    memory_overcommit: 0.1\n"
				   "placement:\n  policy: pack\n  cpu_overcommit: 8.0\n  memory_overcommit: 1.25\n"
				   "rollout:\n  canary: 3\n  canary_pause: 1h30m\n"
				   "distribution:\n  max_parallel_hosts: 1000\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->placement.policy, VP_SPEC_POLICY_PACK);
	CU_ASSERT_EQUAL(s->placement.cpu_overcommit_milli, 8000);
	CU_ASSERT_EQUAL(s->placement.memory_overcommit_milli, 1250);
	CU_ASSERT_EQUAL_FATAL(s->host_count, 3);
	CU_ASSERT_EQUAL(s->hosts[0].max_clones, 0);
	CU_ASSERT_EQUAL(s->hosts[0].cpu_overcommit_milli, 1500);
	CU_ASSERT_EQUAL(s->hosts[0].memory_overcommit_milli, 1250); /* from the section, written later */
	CU_ASSERT_EQUAL(s->hosts[1].max_clones, VP_SPEC_UNLIMITED);
	CU_ASSERT_EQUAL(s->hosts[1].cpu_overcommit_milli, 8000);
	CU_ASSERT_EQUAL(s->hosts[1].memory_overcommit_milli, 125);
	CU_ASSERT_EQUAL(s->hosts[2].max_clones, 10000);
	CU_ASSERT_EQUAL(s->hosts[2].cpu_overcommit_milli, 64000);
	CU_ASSERT_EQUAL(s->hosts[2].memory_overcommit_milli, 100);
	CU_ASSERT_EQUAL(s->rollout.canary, 3);
	CU_ASSERT_EQUAL(s->rollout.canary_pause_sec, 5400);
	CU_ASSERT_EQUAL(s->distribution.max_parallel_hosts, 1000);
	vp_spec_free(s);

	/* The default written out, the limits, and a whole number as a ratio. */
	s = parse_ok(BASE "rollout: {canary: 10000, canary_pause: manual}\nplacement: {cpu_overcommit: 4, policy: spread}\n"
			  "distribution: {max_parallel_hosts: 1}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->rollout.canary, 10000);
	CU_ASSERT_EQUAL(s->rollout.canary_pause_sec, VP_SPEC_PAUSE_MANUAL);
	CU_ASSERT_EQUAL(s->placement.policy, VP_SPEC_POLICY_SPREAD);
	CU_ASSERT_EQUAL(s->hosts[0].cpu_overcommit_milli, 4000);
	CU_ASSERT_EQUAL(s->distribution.max_parallel_hosts, 1);
	CU_ASSERT_FALSE(s->distribution.fanout);
	CU_ASSERT_PTR_NULL(s->distribution.seed_identity);
	vp_spec_free(s);

	s = parse_ok(BASE "distribution: {max_parallel_hosts: 1, fanout: true, seed_vdipool: /usr/bin/vdipool,\n"
			  "  seed_identity: /etc/vdipool/seed_ed25519, seed_known_hosts: /etc/vdipool/known_hosts}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE(s->distribution.fanout);
	CU_ASSERT_STRING_EQUAL(s->distribution.seed_vdipool, "/usr/bin/vdipool");
	CU_ASSERT_STRING_EQUAL(s->distribution.seed_identity, "/etc/vdipool/seed_ed25519");
	CU_ASSERT_STRING_EQUAL(s->distribution.seed_known_hosts, "/etc/vdipool/known_hosts");
	vp_spec_free(s);

	s = parse_ok(BASE "rollout:\n  canary_pause: 86400\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->rollout.canary_pause_sec, 86400);
	vp_spec_free(s);
}

static void test_example_quickstart(void)
{
	vp_spec *s = load_example("quickstart.yaml");

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->pool, "quickstart");
	VP_ASSERT_STR_EQ(s->base.name, "tiny");
	CU_ASSERT_PTR_NULL(s->base.version);
	CU_ASSERT_EQUAL(s->storage.tier_count, 1);
	VP_ASSERT_STR_EQ(s->storage.bases->path, "/var/lib/vdipool");
	CU_ASSERT_PTR_EQUAL(s->storage.deltas, s->storage.bases);
	CU_ASSERT_EQUAL(s->clones.count, 5);
	VP_ASSERT_STR_EQ(s->clones.name, "{pool}-{index}");
	CU_ASSERT_EQUAL(s->clones.mode, VP_CLONE_LINKED);
	VP_ASSERT_STR_EQ(s->domain.template_name, "server");
	CU_ASSERT_EQUAL(s->domain.vcpus, 1);
	CU_ASSERT_EQUAL(s->domain.memory_bytes, 256ull << 20);
	CU_ASSERT_EQUAL(s->domain.start, true);
	VP_ASSERT_STR_EQ(s->domain.network, "default");
	CU_ASSERT_EQUAL(s->delta.cluster_size, 128 * 1024);
	CU_ASSERT_EQUAL(s->delta.preallocation, VP_SPEC_PREALLOC_METADATA);
	CU_ASSERT_EQUAL(s->data_disk.size, 0);
	CU_ASSERT_EQUAL(s->host_count, 1);
	CU_ASSERT_EQUAL(s->gc.keep, 2);
	vp_spec_free(s);
}

static void test_example_ci_runners(void)
{
	vp_spec *s = load_example("ci-runners.yaml");
	char name[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->pool, "ci");
	VP_ASSERT_STR_EQ(s->base.version, "2024.06.1");
	CU_ASSERT_EQUAL(s->clones.count, 50);
	CU_ASSERT_EQUAL(vp_spec_clone_name(s, 1, name, sizeof(name)), 0);
	VP_ASSERT_STR_EQ(name, "ci-001");
	CU_ASSERT_EQUAL(vp_spec_clone_name(s, 50, name, sizeof(name)), 0);
	VP_ASSERT_STR_EQ(name, "ci-050");
	CU_ASSERT_EQUAL(vp_spec_clone_name(s, 1000, name, sizeof(name)), 0);
	VP_ASSERT_STR_EQ(name, "ci-1000");
	CU_ASSERT_EQUAL(s->delta.extended_l2, true);
	CU_ASSERT_EQUAL(s->delta.cluster_size, 128 * 1024);
	CU_ASSERT_EQUAL(s->domain.vcpus, 2);
	CU_ASSERT_EQUAL(s->domain.memory_bytes, 2ull << 30);
	CU_ASSERT_EQUAL(s->domain.max_parallel_starts, 8);
	CU_ASSERT_EQUAL(s->rollout.max_unavailable, 5);
	CU_ASSERT_EQUAL(s->rollout.max_unavailable_percent, false);
	CU_ASSERT_EQUAL_FATAL(s->rollout.health.argc, 2);
	VP_ASSERT_STR_EQ(s->rollout.health.argv[0], "/usr/local/bin/ci-runner-ready");
	VP_ASSERT_STR_EQ(s->rollout.health.argv[1], "--wait");
	CU_ASSERT_PTR_NULL(s->rollout.health.argv[2]);
	CU_ASSERT_EQUAL(s->rollout.health.timeout_sec, 300);
	CU_ASSERT_EQUAL(s->rollout.shutdown_timeout_sec, 60);
	CU_ASSERT_EQUAL(s->gc.keep, 3);
	vp_spec_free(s);
}

static void test_example_office(void)
{
	vp_spec *s = load_example("office-desktops.yaml");

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->clones.count, 300);
	CU_ASSERT_EQUAL(s->storage.tier_count, 2);
	VP_ASSERT_STR_EQ(s->storage.bases->name, "fast");
	VP_ASSERT_STR_EQ(s->storage.bases->path, "/srv/vdipool/fast");
	VP_ASSERT_STR_EQ(s->storage.deltas->name, "bulk");
	VP_ASSERT_STR_EQ(s->storage.deltas->path, "/srv/vdipool/deltas");
	CU_ASSERT_EQUAL(s->data_disk.size, 20ull << 30);
	CU_ASSERT_PTR_EQUAL(s->data_disk.tier, s->storage.deltas);
	VP_ASSERT_STR_EQ(s->domain.template_name, "desktop");
	CU_ASSERT_PTR_NOT_NULL(strstr(s->domain.template_path, "/desktop.xml"));
	VP_ASSERT_STR_EQ(s->domain.network, "office-lan");
	CU_ASSERT_EQUAL(s->rollout.max_unavailable, 10);
	CU_ASSERT_EQUAL(s->rollout.max_unavailable_percent, true);
	CU_ASSERT_EQUAL_FATAL(s->rollout.health.argc, 3);
	VP_ASSERT_STR_EQ(s->rollout.health.argv[0], "/bin/sh");
	VP_ASSERT_STR_EQ(s->rollout.health.argv[1], "-c");
	CU_ASSERT_EQUAL(s->rollout.health.timeout_sec, 600);
	CU_ASSERT_EQUAL(s->rollout.shutdown_timeout_sec, 180);
	CU_ASSERT_EQUAL_FATAL(s->host_count, 2);
	VP_ASSERT_STR_EQ(s->hosts[0].name, "hv1");
	CU_ASSERT_EQUAL(s->hosts[0].has_ssh, false);
	VP_ASSERT_STR_EQ(s->hosts[1].uri, "qemu+ssh://vdipool@hv2.example.com/system");
	CU_ASSERT_EQUAL(s->hosts[1].has_ssh, true);
	VP_ASSERT_STR_EQ(s->hosts[1].ssh.user, "vdipool");
	CU_ASSERT_EQUAL(s->hosts[1].ssh.port, 22);
	VP_ASSERT_STR_EQ(s->hosts[1].ssh.known_hosts, "/etc/vdipool/known_hosts");
	VP_ASSERT_STR_EQ(s->hosts[1].ssh.identity, "/etc/vdipool/id_ed25519");
	VP_ASSERT_STR_EQ(s->hosts[1].ssh.host, "hv2.example.com");
	CU_ASSERT_TRUE(s->hosts[1].remote);
	CU_ASSERT_FALSE(s->hosts[0].remote);
	CU_ASSERT_EQUAL(s->hosts[0].max_clones, 200);
	CU_ASSERT_EQUAL(s->hosts[0].cpu_overcommit_milli, 4000);
	CU_ASSERT_EQUAL(s->hosts[1].max_clones, VP_SPEC_UNLIMITED);
	CU_ASSERT_EQUAL(s->hosts[1].cpu_overcommit_milli, 2000);
	CU_ASSERT_EQUAL(s->hosts[1].memory_overcommit_milli, 1000);
	CU_ASSERT_EQUAL(s->placement.policy, VP_SPEC_POLICY_SPREAD);
	CU_ASSERT_EQUAL(s->rollout.canary, 5);
	CU_ASSERT_EQUAL(s->rollout.canary_pause_sec, 1800);
	CU_ASSERT_EQUAL(s->distribution.max_parallel_hosts, 2);
	vp_spec_free(s);
}

/* Defaults that follow other keys, and values in all their spellings. */
static void test_values(void)
{
	vp_spec *s = parse_ok(BASE "delta:\n  extended_l2: false\n"
				   "domain:\n  network: none\n  memory: 1048576K\n  start: False\n"
				   "rollout:\n  max_unavailable: 100%\n  health:\n    timeout: 1m30s\n"
				   "  shutdown_timeout: 45\n"
				   "storage2: x\n");

	CU_ASSERT_PTR_NULL(s); /* storage2 is unknown */
	s = parse_ok(BASE "delta:\n  extended_l2: false\n"
			  "domain:\n  network: none\n  memory: 1048576K\n  start: False\n"
			  "rollout:\n  max_unavailable: 100%\n  health:\n    timeout: 1m30s\n"
			  "  shutdown_timeout: 45\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->delta.cluster_size, 64 * 1024);
	CU_ASSERT_EQUAL(s->delta.preallocation, VP_SPEC_PREALLOC_OFF);
	CU_ASSERT_PTR_NULL(s->domain.network);
	CU_ASSERT_EQUAL(s->domain.memory_bytes, 1ull << 30);
	CU_ASSERT_EQUAL(s->domain.start, false);
	CU_ASSERT_EQUAL(s->rollout.max_unavailable, 100);
	CU_ASSERT_EQUAL(s->rollout.health.timeout_sec, 90);
	CU_ASSERT_EQUAL(s->rollout.shutdown_timeout_sec, 45);
	CU_ASSERT_EQUAL(s->delta.size, 0); /* the base's size */
	vp_spec_free(s);

	/* A disk larger than the base; full clones take the size but no qcow2 layout keys. */
	s = parse_ok(BASE "  mode: full\ndelta:\n  size: 20G\n  max_depth: 3\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->clones.mode, VP_CLONE_FULL);
	CU_ASSERT_EQUAL(s->delta.size, 20ull << 30);
	vp_spec_free(s);

	/* Trailing slashes go; versions stay text, never numbers. */
	s = parse_ok("pool: {name: a}\nbase: {name: b, version: 1.10}\n"
		     "storage: {tiers: [{name: t, path: /srv/x//}]}\nclones: {count: 1, name: solo, start_index: 0}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->storage.tiers[0].path, "/srv/x");
	VP_ASSERT_STR_EQ(s->base.version, "1.10");
	CU_ASSERT_EQUAL(s->clones.start_index, 0);
	CU_ASSERT_EQUAL(s->clones.spares, 0);
	CU_ASSERT_EQUAL(s->clones.warm_base, false);
	vp_spec_free(s);
	s = parse_ok(BASE8 "clones: {count: 2, spares: 3, parked: 2}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->clones.spares, 3);
	CU_ASSERT_EQUAL(s->clones.parked, 2);
	vp_spec_free(s);
}

static void hash_of(const char *yaml, char out[VP_SPEC_HASH_LEN]);

/* readiness: a list is an argv, a string a shell line; it never changes the hash. */
static void test_readiness(void)
{
	char a[VP_SPEC_HASH_LEN], b[VP_SPEC_HASH_LEN];
	vp_spec *s = parse_ok(BASE "readiness:\n  command: [/bin/nc, -z, x, 22]\n  timeout: 1m\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(s->readiness.argc, 4);
	VP_ASSERT_STR_EQ(s->readiness.argv[0], "/bin/nc");
	VP_ASSERT_STR_EQ(s->readiness.argv[3], "22");
	CU_ASSERT_PTR_NULL(s->readiness.argv[4]);
	CU_ASSERT_EQUAL(s->readiness.timeout_sec, 60);
	CU_ASSERT_EQUAL(s->rollout.health.argc, 0);
	vp_spec_free(s);
	s = parse_ok(BASE "readiness: {command: 'ping -c1 \"$VDIPOOL_ADDRESS\"'}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(s->readiness.argc, 3);
	VP_ASSERT_STR_EQ(s->readiness.argv[0], "/bin/sh");
	VP_ASSERT_STR_EQ(s->readiness.argv[1], "-c");
	VP_ASSERT_STR_EQ(s->readiness.argv[2], "ping -c1 \"$VDIPOOL_ADDRESS\"");
	CU_ASSERT_EQUAL(s->readiness.timeout_sec, 30);
	vp_spec_free(s);
	hash_of(BASE, a);
	hash_of(BASE "readiness: {command: [true], timeout: 5s}\n", b);
	VP_ASSERT_STR_EQ(a, b);
}

/* The duration syntax as options (--timeout) take it. */
static void test_parse_duration(void)
{
	CU_ASSERT_EQUAL(vp_spec_parse_duration("90"), 90);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("30s"), 30);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("10m"), 600);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("1h30m"), 5400);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("1m30s"), 90);
	CU_ASSERT_EQUAL(vp_spec_parse_duration(""), -1);
	CU_ASSERT_EQUAL(vp_spec_parse_duration(NULL), -1);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("5x"), -1);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("m"), -1);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("-5"), -1);
	CU_ASSERT_EQUAL(vp_spec_parse_duration("9999999999"), -1);
}

/* An rbd tier takes its defaults and gets its 'where'; keys may come in any order. */
static void test_rbd_tiers(void)
{
	vp_spec *s = parse_ok(RBD11);
	const vp_spec_tier *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	t = &s->storage.tiers[0];
	CU_ASSERT_EQUAL(t->driver, VP_STORAGE_RBD);
	CU_ASSERT_PTR_NULL(t->path);
	VP_ASSERT_STR_EQ(t->where, "rbd:vdi");
	VP_ASSERT_STR_EQ(t->rbd_pool, "vdi");
	CU_ASSERT_PTR_NULL(t->rbd_namespace);
	VP_ASSERT_STR_EQ(t->rbd_conf, "/etc/ceph/ceph.conf");
	VP_ASSERT_STR_EQ(t->rbd_id, "admin");
	CU_ASSERT_PTR_NULL(t->rbd_keyring);
	CU_ASSERT_PTR_EQUAL(s->storage.bases, t);
	CU_ASSERT_PTR_EQUAL(s->storage.deltas, t);
	VP_ASSERT_STR_EQ(s->storage.state_dir, "/var/lib/vdipool");
	CU_ASSERT_EQUAL(s->delta.max_depth, 8);
	/* The qcow2 defaults stay, unread by an rbd backend. */
	CU_ASSERT_EQUAL(s->delta.cluster_size, 128 * 1024);
	vp_spec_free(s);

	/* A namespace on the bases tier (domains never open a base). */
	s = parse_ok(BASE4 "storage:\n  state_dir: /srv/state/\n  tiers:\n"
			   "    - pool: vdi\n      namespace: ci\n      keyring: /etc/ceph/lab.client.vdipool.keyring\n"
			   "      id: vdipool\n      conf: /etc/ceph/lab.conf\n      driver: rbd\n      name: ceph\n"
			   "    - {name: clones, driver: rbd, pool: vdi, conf: /etc/ceph/lab.conf}\n"
			   "  bases: ceph\n  deltas: clones\n"
			   CLONES "delta:\n  max_depth: 16\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->storage.deltas->where, "rbd:vdi");
	t = s->storage.bases;
	VP_ASSERT_STR_EQ(t->name, "ceph");
	VP_ASSERT_STR_EQ(t->where, "rbd:vdi/ci");
	VP_ASSERT_STR_EQ(t->rbd_namespace, "ci");
	VP_ASSERT_STR_EQ(t->rbd_conf, "/etc/ceph/lab.conf");
	VP_ASSERT_STR_EQ(t->rbd_id, "vdipool");
	VP_ASSERT_STR_EQ(t->rbd_keyring, "/etc/ceph/lab.client.vdipool.keyring");
	VP_ASSERT_STR_EQ(s->storage.state_dir, "/srv/state");
	CU_ASSERT_EQUAL(s->delta.max_depth, 16);
	vp_spec_free(s);

	/* A dir tier: 'where' is its path, and no rbd field is set. */
	s = parse_ok(BASE "delta:\n  max_depth: 1\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	t = &s->storage.tiers[0];
	VP_ASSERT_STR_EQ(t->where, "/var/lib/vdipool");
	CU_ASSERT_PTR_NULL(t->rbd_pool);
	CU_ASSERT_PTR_NULL(t->rbd_conf);
	CU_ASSERT_PTR_NULL(t->rbd_id);
	CU_ASSERT_EQUAL(s->delta.max_depth, 1);
	vp_spec_free(s);
}

/* Pool names at the length limit, and one over. */
static void test_rbd_names(void)
{
	static const char want[] = "pool.yaml:7:36: storage.tiers[0].pool: " RADOS_RULE ", got 'ppp";
	char name[102], yaml[512];
	vp_spec *s;

	memset(name, 'p', sizeof(name) - 2);
	name[100] = '\0';
	snprintf(yaml, sizeof(yaml), BASE4 "storage:\n  tiers:\n    - {name: t, driver: rbd, pool: %s}\n" CLONES, name);
	s = parse_ok(yaml);
	CU_ASSERT_PTR_NOT_NULL(s);
	vp_spec_free(s);
	strcat(name, "p");
	snprintf(yaml, sizeof(yaml), BASE4 "storage:\n  tiers:\n    - {name: t, driver: rbd, pool: %s}\n" CLONES, name);
	CU_ASSERT_EQUAL(strncmp(expect_bad("pool.yaml", yaml, strlen(yaml))->message, want, strlen(want)), 0);
	/* Pool, namespace and user take '_', '.', '-' and capitals, as Ceph does. */
	s = parse_ok(BASE4 "storage:\n  tiers:\n"
			   "    - {name: t, driver: rbd, pool: VDI_pool-1.a,\n"
			   "       namespace: x.y-Z_, id: ci.runner}\n"
			   "    - {name: d, driver: rbd, pool: d, id: ci.runner}\n  bases: t\n  deltas: d\n" CLONES);
	CU_ASSERT_PTR_NOT_NULL(s);
	vp_spec_free(s);
}

/* What the storage.state_dir default follows: a dir bases tier's path, else a local directory. */
static void test_state_dir(void)
{
	vp_spec *s = parse_ok(BASE4 "storage:\n  tiers:\n    - {name: fast, path: /srv/fast}\n"
				    "    - {name: bulk, path: /srv/bulk}\n  bases: fast\n  deltas: bulk\n" CLONES);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->storage.state_dir, "/srv/fast");
	vp_spec_free(s);
	s = parse_ok(BASE4 "storage:\n  state_dir: /var/lib/vdipool-state\n"
			   "  tiers:\n    - {name: t, path: /var/lib/vdipool}\n" CLONES);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->storage.state_dir, "/var/lib/vdipool-state");
	vp_spec_free(s);
	s = parse_ok(RBD11);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->storage.state_dir, "/var/lib/vdipool");
	vp_spec_free(s);
}

/* The mixes that can make a delta, and data disks on any driver. */
static void test_tier_mixes(void)
{
	vp_spec *s;

	/* Bases and deltas on dir, the data disk on Ceph: a data disk is a standalone image. */
	s = parse_ok(BASE4 "storage:\n  tiers:\n    - {name: a, path: /a}\n    - {name: c, driver: rbd, pool: data}\n"
			   "  bases: a\n  deltas: a\n" CLONES "data_disk: {size: 20G, tier: c}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->data_disk.tier->driver, VP_STORAGE_RBD);
	VP_ASSERT_STR_EQ(s->data_disk.tier->where, "rbd:data");
	vp_spec_free(s);

	/* Everything on Ceph: bases and deltas in two pools of one cluster (the default conf written
	 * out on one side), the data disk in another cluster; the data disk defaults to the deltas. */
	s = parse_ok(BASE4 "storage:\n  tiers:\n"
			   "    - {name: b, driver: rbd, pool: bases, namespace: ci}\n"
			   "    - {name: d, driver: rbd, pool: deltas,\n"
			   "       conf: /etc/ceph/ceph.conf, id: ci}\n"
			   "    - {name: x, driver: rbd, pool: data, conf: /etc/ceph/other.conf, id: ci}\n"
			   "  bases: b\n  deltas: d\n" CLONES "data_disk: {size: 20G, tier: x}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	VP_ASSERT_STR_EQ(s->storage.bases->where, "rbd:bases/ci");
	VP_ASSERT_STR_EQ(s->storage.deltas->where, "rbd:deltas");
	VP_ASSERT_STR_EQ(s->data_disk.tier->where, "rbd:data");
	vp_spec_free(s);
	s = parse_ok(RBD11 "data_disk: {size: 1G}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_EQUAL(s->data_disk.tier, s->storage.deltas);
	vp_spec_free(s);

	/* Bases and deltas on rbd with a dir data disk. */
	s = parse_ok(BASE4 "storage:\n  tiers:\n"
			   "    - {name: t, driver: rbd, pool: vdi}\n    - {name: l, path: /srv/l}\n"
			   "  bases: t\n  deltas: t\n" CLONES "data_disk: {size: 1G, tier: l}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->data_disk.tier->driver, VP_STORAGE_DIR);
	vp_spec_free(s);

	/* Full clones on rbd: an RBD clone flattened at once is a standalone copy, made with the
	 * backend's own clone and flatten. */
	s = parse_ok(BASE4 "storage:\n  tiers:\n    - {name: t, driver: rbd, pool: vdi}\n"
			   "clones:\n  count: 3\n  mode: full\ndelta: {max_depth: 2}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->clones.mode, VP_CLONE_FULL);
	vp_spec_free(s);
}

/* Where rbd keys sit, for later stages that report against them. */
static void test_rbd_locate(void)
{
	vp_spec *s = parse_ok(BASE4 "storage:\n  tiers:\n    - name: t\n      driver: rbd\n      pool: vdi\n"
				    "      id: ci\n" CLONES);
	vp_spec_loc loc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(vp_spec_locate(s, "storage.tiers[0].pool", &loc), 0);
	CU_ASSERT_EQUAL(loc.line, 9);
	CU_ASSERT_EQUAL(loc.column, 13);
	/* conf was left to its default: the tier item is the nearest written key. */
	CU_ASSERT_EQUAL(vp_spec_locate(s, "storage.tiers[0].conf", &loc), VP_ENOENT);
	CU_ASSERT_EQUAL(loc.line, 7);
	CU_ASSERT_EQUAL(vp_spec_error(s, "storage.tiers[0].id", "cephx refused %s", "'client.ci'"), VP_EINVAL);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "pool.yaml:10:11: storage.tiers[0].id: cephx refused 'client.ci'");
	vp_spec_free(s);
}

/* Local and remote hosts, and the address storage reaches each at over SSH. */
static void test_ssh_hosts(void)
{
	vp_spec *s = parse_ok(BASE "hosts:\n"
				   "  - {name: sys, uri: 'qemu:///system'}\n"
				   "  - {name: ses, uri: 'qemu:///session'}\n"
				   "  - {name: hv1, uri: 'qemu+ssh://vdipool@hv1.example.com:2222/system', ssh: {}}\n"
				   "  - name: v6\n"
				   "    uri: 'qemu+libssh2://u@[fd00::7]:22401/session?keyfile=/k&sshauth=privkey'\n"
				   "    ssh: {identity: /etc/vdipool/id_ed25519/, port: 22401}\n"
				   "  - {name: nat, uri: 'qemu+tls://10.0.0.9/system', ssh: {host: gw.example.com, compress: true}}\n"
				   "  - {name: lo, uri: 'qemu+unix:///system?socket=/run/x.sock', ssh: {host: 127.0.0.1}}\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(s->host_count, 6);
	CU_ASSERT_FALSE(s->hosts[0].remote);
	CU_ASSERT_PTR_NULL(s->hosts[0].ssh.host);
	CU_ASSERT_FALSE(s->hosts[1].remote);
	CU_ASSERT_PTR_NULL(s->hosts[1].ssh.host);
	CU_ASSERT_TRUE(s->hosts[2].remote);
	VP_ASSERT_STR_EQ(s->hosts[2].ssh.host, "hv1.example.com");
	CU_ASSERT_PTR_NULL(s->hosts[2].ssh.identity); /* ssh-agent */
	CU_ASSERT_FALSE(s->hosts[2].ssh.compress);    /* off unless asked */
	CU_ASSERT_TRUE(s->hosts[4].ssh.compress);
	CU_ASSERT_EQUAL(s->hosts[2].ssh.port, 22);
	CU_ASSERT_TRUE(s->hosts[3].remote);
	VP_ASSERT_STR_EQ(s->hosts[3].ssh.host, "fd00::7");
	VP_ASSERT_STR_EQ(s->hosts[3].ssh.identity, "/etc/vdipool/id_ed25519");
	CU_ASSERT_EQUAL(s->hosts[3].ssh.port, 22401);
	CU_ASSERT_TRUE(s->hosts[4].remote);
	VP_ASSERT_STR_EQ(s->hosts[4].ssh.host, "gw.example.com");
	/* A local libvirt with an SSH address for its storage: said, so taken. */
	CU_ASSERT_FALSE(s->hosts[5].remote);
	VP_ASSERT_STR_EQ(s->hosts[5].ssh.host, "127.0.0.1");
	vp_spec_free(s);

	/* The default host is this machine. */
	s = parse_ok(BASE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_FALSE(s->hosts[0].remote);
	CU_ASSERT_PTR_NULL(s->hosts[0].ssh.host);
	vp_spec_free(s);
}

static void test_clone_names(void)
{
	vp_spec *s = parse_ok(BASE8 "clones:\n  count: 3\n  name: \"{pool}-x{index:05}\"\n  start_index: 7\n");
	char name[16];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(vp_spec_clone_name(s, 7, name, sizeof(name)), 0);
	VP_ASSERT_STR_EQ(name, "ci-x00007");
	CU_ASSERT_EQUAL(vp_spec_clone_name(s, 9, name, 9), VP_EINVAL);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "the name of clone 9 does not fit in 9 bytes");
	CU_ASSERT_EQUAL(vp_spec_clone_name(s, 9, name, 10), 0);
	VP_ASSERT_STR_EQ(name, "ci-x00009");
	vp_spec_free(s);

	s = parse_ok(BASE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(vp_spec_clone_name(s, 3, name, sizeof(name)), 0);
	VP_ASSERT_STR_EQ(name, "ci-3");
	vp_spec_free(s);
}

static void hash_of(const char *yaml, char out[VP_SPEC_HASH_LEN])
{
	vp_spec *s = parse_ok(yaml);

	out[0] = '\0';
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(vp_spec_hash(s, out), 0);
	CU_ASSERT_EQUAL(strlen(out), 64);
	vp_spec_free(s);
}

static void test_hash(void)
{
	char a[VP_SPEC_HASH_LEN], b[VP_SPEC_HASH_LEN];

	hash_of(BASE "domain:\n  vcpus: 2\n", a);
	hash_of(BASE "domain:\n  vcpus: 2\n", b);
	VP_ASSERT_STR_EQ(a, b);
	/* Key order, comments, flow style and written-out defaults change nothing. */
	hash_of("# reordered\nclones: {count: 3}\ndomain: {vcpus: 2, network: default, memory: 512M}\n"
		"storage:\n  tiers: [{path: /var/lib/vdipool/, name: t}]\nbase: {name: tiny}\npool: {name: ci}\n", b);
	VP_ASSERT_STR_EQ(a, b);
	/* delta.encrypt: none is the default and changes nothing; luks changes the definition. */
	hash_of(BASE "domain:\n  vcpus: 2\ndelta:\n  encrypt: none\n", b);
	VP_ASSERT_STR_EQ(a, b);
	hash_of(BASE "domain:\n  vcpus: 2\ndelta:\n  encrypt: luks\n", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	/* Neither do keys that never reach a domain definition. */
	hash_of(BASE "domain:\n  vcpus: 2\n  start: false\ngc: {keep: 9}\nrollout: {max_unavailable: 1}\n", b);
	VP_ASSERT_STR_EQ(a, b);
	/* Nor where clones run or how they are rolled out and shipped: placement
	 * is not part of a clone's definition, so a new policy or host limit
	 * never redefines a clone. */
	hash_of(BASE "domain:\n  vcpus: 2\nplacement: {policy: pack, cpu_overcommit: 16, memory_overcommit: 1.5}\n"
		     "hosts:\n  - {name: a, max_clones: 0, cpu_overcommit: 2.5, memory_overcommit: 0.5}\n"
		     "  - {name: b, uri: 'qemu+ssh://b/system', ssh: {identity: /k, host: b.lan}}\n"
		     "rollout: {canary: 5, canary_pause: 10m}\ndistribution: {max_parallel_hosts: 9}\n", b);
	VP_ASSERT_STR_EQ(a, b);
	hash_of(BASE "domain:\n  vcpus: 3\n", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	hash_of(BASE "domain:\n  vcpus: 2\n  network: none\n", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	hash_of(BASE "domain:\n  vcpus: 2\n  template: desktop\n", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	hash_of(BASE "domain:\n  vcpus: 2\ndata_disk: {size: 1G}\n", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* rbd tiers changed nothing in the hashes of dir pools: these were computed before they
 * existed (a template of fixed content, since its digest is hashed). rbd deltas hash their
 * source: where, user, cluster and keyring all reach the disk's definition. */
static void test_hash_tiers(void)
{
	char tmpl[] = "/tmp/vp_spec_hash_XXXXXX", yaml[1024], a[VP_SPEC_HASH_LEN], b[VP_SPEC_HASH_LEN];
	int fd = mkstemp(tmpl);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(write(fd, "<domain/>\n", 10), 10);
	close(fd);
	snprintf(yaml, sizeof(yaml), BASE "domain: {template: %s}\n", tmpl);
	hash_of(yaml, a);
	VP_ASSERT_STR_EQ(a, "5dbb94689d3b73771a2ca4eb3c35e2febcb310abef049655d51cfc447aea0a39");
	snprintf(yaml, sizeof(yaml), BASE "domain: {template: %s}\ndata_disk: {size: 1G}\n", tmpl);
	hash_of(yaml, a);
	VP_ASSERT_STR_EQ(a, "0767f5e765c9d6e311e7c14e7eb296a907b08669654308a4d3111cd7a00dac82");
	unlink(tmpl);

	hash_of(RBD11, a);
	hash_of(BASE, b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	hash_of(BASE4 "storage:\n  tiers:\n"
		      "    - {pool: vdi, driver: rbd, name: t, id: admin, conf: /etc/ceph/ceph.conf}\n" CLONES, b);
	VP_ASSERT_STR_EQ(a, b);
	hash_of(BASE4 "storage:\n  tiers:\n    - {name: t, driver: rbd, pool: vdi2}\n" CLONES, b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	hash_of(BASE4 "storage:\n  tiers:\n    - {name: t, driver: rbd, pool: vdi, id: ci}\n" CLONES, b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	hash_of(BASE4 "storage:\n  tiers:\n    - {name: t, driver: rbd, pool: vdi, keyring: /k}\n" CLONES, b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	hash_of(RBD11 "data_disk: {size: 1G}\n", b);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	/* max_depth shapes the chain under a disk, not its definition. */
	hash_of(RBD11 "delta: {max_depth: 3}\n", b);
	VP_ASSERT_STR_EQ(a, b);
}

static void test_locate(void)
{
	vp_spec *s = parse_ok(BASE "hosts:\n  - name: a\n  - name: b\n    uri: qemu+ssh://b/system\n    ssh: {}\n");
	vp_spec_loc loc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(vp_spec_locate(s, "clones.count", &loc), 0);
	CU_ASSERT_EQUAL(loc.key_line, 10);
	CU_ASSERT_EQUAL(loc.key_column, 3);
	CU_ASSERT_EQUAL(loc.line, 10);
	CU_ASSERT_EQUAL(loc.column, 10);
	CU_ASSERT_EQUAL(vp_spec_locate(s, "hosts[1].uri", &loc), 0);
	CU_ASSERT_EQUAL(loc.line, 14);
	CU_ASSERT_EQUAL(loc.column, 10);
	/* A defaulted key falls back to what encloses it. */
	CU_ASSERT_EQUAL(vp_spec_locate(s, "clones.mode", &loc), VP_ENOENT);
	CU_ASSERT_EQUAL(loc.line, 9);
	CU_ASSERT_EQUAL(loc.column, 1);
	CU_ASSERT_EQUAL(vp_spec_locate(s, "rollout.health.timeout", &loc), VP_ENOENT);
	CU_ASSERT_EQUAL(loc.line, 1);
	CU_ASSERT_EQUAL(vp_spec_error(s, "hosts[1].uri", "cannot connect to %s", "'b'"), VP_EINVAL);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "pool.yaml:14:10: hosts[1].uri: cannot connect to 'b'");
	CU_ASSERT_EQUAL(vp_error_last()->klass, VP_ERR_SPEC);
	vp_spec_free(s);
}

static bool starts_with(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) == 0)
		return true;
	fprintf(stderr, "\n  got '%s'\n  expected a start of '%s'\n", s, prefix);
	return false;
}

static void test_find_template(void)
{
	char dir[] = "/tmp/vp_spec_tmpl_XXXXXX", file[64], *path = NULL;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/server.xml", dir);
	f = fopen(file, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("<domain/>\n", f);
	fclose(f);

	/* The search path comes first, empty entries are skipped. */
	CU_ASSERT_EQUAL(vp_spec_set_template_path("::/nonexistent:"), 0);
	CU_ASSERT_EQUAL(vp_spec_find_template(&path, "server"), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(path, "templates/server.xml"));
	free(path);
	CU_ASSERT_EQUAL(vp_spec_set_template_path(dir), 0);
	CU_ASSERT_EQUAL(vp_spec_find_template(&path, "server"), 0);
	VP_ASSERT_STR_EQ(path, file);
	free(path);
	CU_ASSERT_EQUAL(vp_spec_find_template(&path, file), 0);
	VP_ASSERT_STR_EQ(path, file);
	free(path);

	CU_ASSERT_EQUAL(vp_spec_find_template(&path, "nope"), VP_ENOENT);
	CU_ASSERT_PTR_NULL(path);
	CU_ASSERT(starts_with(vp_error_last()->message, "template 'nope' not found: no nope.xml in "));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, dir));
	CU_ASSERT_EQUAL(vp_spec_find_template(&path, "../etc/passwd"), VP_EINVAL);
	VP_ASSERT_STR_EQ(vp_error_last()->message,
			 "template '../etc/passwd' must be a name (like 'server') or an absolute path");
	CU_ASSERT_EQUAL(vp_spec_find_template(&path, "Bad_Name"), VP_EINVAL);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "invalid template name 'Bad_Name': " NAME_RULE);

	/* A spec naming a template that is nowhere says where it looked. */
	CU_ASSERT_EQUAL(vp_spec_parse(&(vp_spec *){ NULL }, "pool.yaml", BASE "domain: {template: nope}\n",
				      strlen(BASE "domain: {template: nope}\n")),
			VP_EINVAL);
	CU_ASSERT(starts_with(vp_error_last()->message,
			      "pool.yaml:11:20: domain.template: template 'nope' not found: no nope.xml in "));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, dir));

	unlink(file);
	rmdir(dir);
	/* The environment is the program's to read, not the library's. */
	setenv("VDIPOOL_TEMPLATE_PATH", dir, 1);
	CU_ASSERT_EQUAL(vp_spec_set_template_path(NULL), 0);
	CU_ASSERT_EQUAL(vp_spec_find_template(&path, "server"), 0);
	CU_ASSERT_PTR_NULL(strstr(path, dir));
	free(path);
	unsetenv("VDIPOOL_TEMPLATE_PATH");
}

static CU_TestInfo spec_tests[] = {
	{ "bad specs: exact messages", test_bad_table },
	{ "50 MB buffer refused", test_too_large_buffer },
	{ "50 MB file refused unread", test_too_large_file },
	{ "10,000-deep nesting", test_deep_nesting },
	{ "nesting at the limit", test_nesting_at_limit },
	{ "too many nodes", test_too_many_nodes },
	{ "fixtures on disk", test_fixtures },
	{ "load errors", test_load_errors },
	{ "defaults", test_defaults },
	{ "placement, canary and distribution values", test_placement_values },
	{ "example quickstart", test_example_quickstart },
	{ "example ci-runners", test_example_ci_runners },
	{ "example office-desktops", test_example_office },
	{ "values and dependent defaults", test_values },
	{ "ssh hosts: remote, ssh.host, ssh.identity", test_ssh_hosts },
	{ "clone names", test_clone_names },
	{ "hash", test_hash },
	{ "readiness", test_readiness },
	{ "durations for options", test_parse_duration },
	{ "hash: dir pools unchanged, rbd sources", test_hash_tiers },
	{ "rbd tiers: defaults, where, key order", test_rbd_tiers },
	{ "rbd names at the limits", test_rbd_names },
	{ "storage.state_dir", test_state_dir },
	{ "tier mixes that can make a delta", test_tier_mixes },
	{ "rbd keys located", test_rbd_locate },
	{ "locate and vp_spec_error", test_locate },
	{ "template search", test_find_template },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "spec", NULL, NULL, NULL, NULL, spec_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
