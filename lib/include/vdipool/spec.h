/* vdipool/spec.h: the pool spec: YAML parsed and validated into typed, defaulted plain data. */
#ifndef VDIPOOL_SPEC_H
#define VDIPOOL_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Why a public struct and not an opaque type: a spec is plain, read-only
 * data that the planner, executor and CLI read field by field, hundreds of
 * fields' worth of accessors would add nothing but noise. Every field is
 * filled (defaults applied, references resolved) once vp_spec_load() or
 * vp_spec_parse() returns 0; nothing in it may be changed by callers. Every
 * pointer inside is borrowed from the spec and lives until vp_spec_free().
 *
 * Key paths name a spec position the way error messages do: keys joined by
 * dots, list items as [i] counted from 0: "clones.count", "hosts[1].uri".
 * README.md ("Pool spec reference") lists every key with its type and default.
 */

#define VP_SPEC_MAX_BYTES (4u * 1024 * 1024) /* larger files are refused unread */
#define VP_SPEC_MAX_DEPTH 64                 /* nesting of mappings and sequences */
#define VP_SPEC_MAX_NODES 100000             /* scalars, mappings and sequences */
#define VP_SPEC_MAX_TIERS 16
#define VP_SPEC_MAX_HOSTS 1000
#define VP_SPEC_HASH_LEN 65                  /* SHA-256 in hex, plus the NUL */
#define VP_SPEC_UNLIMITED 0xffffffffu        /* hosts[i].max_clones when not written */
#define VP_SPEC_PAUSE_MANUAL 0u              /* rollout.canary_pause: wait for `vdipool rollout continue` */

typedef enum vp_clone_mode {
	VP_CLONE_LINKED = 0, /* a qcow2 delta on the shared base */
	VP_CLONE_FULL        /* a standalone copy of the base */
} vp_clone_mode;

typedef enum vp_spec_prealloc {
	VP_SPEC_PREALLOC_OFF = 0,
	VP_SPEC_PREALLOC_METADATA /* only with extended_l2: QEMU's rule for backed images */
} vp_spec_prealloc;

/* delta.encrypt: how each clone's disks (delta and data disk) are encrypted. */
typedef enum vp_spec_encrypt {
	VP_SPEC_ENCRYPT_NONE = 0,
	VP_SPEC_ENCRYPT_LUKS     /* LUKS in qcow2, one random key per disk in a private libvirt secret */
} vp_spec_encrypt;

/* domain.accel: which accelerator clones run under. */
typedef enum vp_spec_accel {
	VP_SPEC_ACCEL_AUTO = 0, /* KVM where a probe guest starts under it on the host, else TCG */
	VP_SPEC_ACCEL_KVM,      /* KVM or a clear error */
	VP_SPEC_ACCEL_TCG       /* QEMU's software emulation */
} vp_spec_accel;

/* placement.policy: where new clones go (vdipool/placement.h has the rules). */
typedef enum vp_spec_policy {
	VP_SPEC_POLICY_SPREAD = 0, /* the host with the largest free fraction of its capacity */
	VP_SPEC_POLICY_PACK        /* the first host in spec order with room */
} vp_spec_policy;

typedef enum vp_storage_driver {
	VP_STORAGE_DIR = 0, /* qcow2 files in a local directory (the built-in dir backend) */
	VP_STORAGE_RBD      /* images in a Ceph RADOS pool through librbd (plugin vdipool-rbd.so) */
} vp_storage_driver;

typedef struct vp_spec_tier {
	const char *name;         /* object name */
	vp_storage_driver driver;
	const char *path;         /* dir: absolute, without trailing '/' (except "/"); rbd: NULL */
	/* What names the tier's storage in messages, locks and records: dir: `path`;
	 * rbd: "rbd:<pool>" or "rbd:<pool>/<namespace>". Never NULL. */
	const char *where;
	/* rbd only (NULL for dir): */
	const char *rbd_pool;      /* required: the RADOS pool, e.g. "rbd" */
	const char *rbd_namespace; /* NULL: the pool's default namespace */
	const char *rbd_conf;      /* absolute path of ceph.conf; default "/etc/ceph/ceph.conf" */
	const char *rbd_id;        /* cephx user without "client."; default "admin" */
	const char *rbd_keyring;   /* absolute path; NULL: what the conf says */
} vp_spec_tier;

typedef struct vp_spec_base {
	const char *name;         /* object name of the golden image */
	const char *version;      /* NULL: "latest", resolved later from the base catalog */
} vp_spec_base;

typedef struct vp_spec_storage {
	size_t tier_count;        /* 1..VP_SPEC_MAX_TIERS */
	const vp_spec_tier *tiers;
	const vp_spec_tier *bases;  /* the tier holding base images; one of tiers */
	const vp_spec_tier *deltas; /* the tier holding clone deltas; one of tiers */
	/* Where the controller keeps its own records (placement of clones on hosts,
	 * canary state): the key storage.state_dir (absolute) when written, else the
	 * bases tier's path when it is a dir tier, else "/var/lib/vdipool". */
	const char *state_dir;
} vp_spec_storage;

typedef struct vp_spec_clones {
	unsigned count;           /* 1..10000 */
	const char *name;         /* the pattern, e.g. "ci-{index:03}"; default "{pool}-{index}" */
	unsigned start_index;     /* index of the first clone, 0..1000000; default 1 */
	vp_clone_mode mode;       /* default linked */
	/* Unclaimed clones kept (booted) beyond the claimed ones: apply keeps
	 * max(count, claimed + spares) clones. 0..1000, default 0 (no claims asked for). */
	unsigned spares;
	/* Of the unclaimed clones, how many are kept parked (booted until ready, then saved to
	 * disk with libvirt's managed save; a claim restores one when no running one is ready).
	 * 0..spares, default 0. Needs domain.start and a network. */
	unsigned parked;
	/* Before an apply starts clones on a host whose bases tier is a local dir: read the
	 * base image's allocated ranges into the page cache (boot storms). Default false. */
	bool warm_base;
} vp_spec_clones;

typedef struct vp_spec_delta {
	uint64_t cluster_size;    /* bytes, power of two, 16 KiB..2 MiB; default 128K (64K without extended_l2) */
	bool extended_l2;         /* default true */
	vp_spec_prealloc preallocation; /* default metadata (off without extended_l2) */
	/* Longest chain of parents under a clone's disk (1: the disk straight on a
	 * flat base). A delta that would sit deeper is flattened when it is made.
	 * 1..16, default 8; only backends that flatten (rbd) act on it. */
	unsigned max_depth;
	/* Virtual size of each clone's disk: 0 (default) the base's; else bytes,
	 * 1 MiB..64 TiB, a multiple of 512, at least the base's (checked when the
	 * base is known: plan and apply). The space past the base reads as zeros. */
	uint64_t size;
	/* none (default) or luks: every delta and data disk of the pool is a LUKS-encrypted qcow2
	 * with its own random key, held only in a private libvirt secret. dir tiers on this
	 * machine, linked clones only (checked by validate). */
	vp_spec_encrypt encrypt;
} vp_spec_delta;

typedef struct vp_spec_data_disk {
	uint64_t size;            /* bytes, 1 MiB..64 TiB, multiple of 512; 0: no data disk */
	const vp_spec_tier *tier; /* default the delta tier; NULL when there is no data disk */
} vp_spec_data_disk;

typedef struct vp_spec_domain {
	const char *template_name; /* as written ("server", "/etc/x.xml"); default "server" */
	const char *template_path; /* resolved absolute path of the XML, checked readable */
	unsigned char template_sha256[32]; /* digest of the template's content when loaded */
	unsigned vcpus;           /* 1..256, default 1 */
	uint64_t memory_bytes;    /* 16 MiB..4 TiB, whole MiB, default 512 MiB */
	const char *network;      /* libvirt network name; NULL: no interface ("none"); default "default" */
	bool start;               /* clones run after apply; default true */
	unsigned max_parallel_starts; /* 1..1000, default 4 */
	vp_spec_accel accel;      /* default auto */
} vp_spec_domain;

typedef struct vp_spec_health {
	size_t argc;              /* 0: no health check */
	const char *const *argv;  /* NULL-terminated; a string command becomes /bin/sh -c STRING */
	unsigned timeout_sec;     /* 1..3600, default 300 */
} vp_spec_health;

typedef struct vp_spec_rollout {
	unsigned max_unavailable; /* a count (1..10000), or a percentage (1..100) when ..._percent */
	bool max_unavailable_percent; /* default 25% */
	vp_spec_health health;
	unsigned shutdown_timeout_sec; /* 1..3600, default 120 */
	unsigned canary;          /* clones rolled first, before the waves, 0..10000; default 0: no canary */
	unsigned canary_pause_sec; /* after the canary: 1..86400 s, then the waves go on by themselves;
				    * VP_SPEC_PAUSE_MANUAL (0, the default, written 'manual'): wait for
				    * `vdipool rollout continue` */
} vp_spec_rollout;

typedef struct vp_spec_ssh {
	const char *user;         /* NULL: ssh's default (the current user) */
	unsigned port;            /* 1..65535, default 22 */
	const char *known_hosts;  /* absolute path; NULL: ~/.ssh/known_hosts */
	const char *identity;     /* absolute path of a private key; NULL: keys of ssh-agent */
	const char *host;         /* the address storage reaches over SSH, resolved: ssh.host as
				   * written, else the host part of the uri; NULL for a local host
				   * without an ssh mapping */
	bool compress;            /* zlib compression of the SSH transport (libssh2), default false:
				   * measured slower than sending more on fast links (README) */
} vp_spec_ssh;

typedef struct vp_spec_host {
	const char *name;         /* object name, unique in the spec */
	const char *uri;          /* libvirt URI, default "qemu:///system" */
	bool remote;              /* the uri names a host ("qemu+ssh://h/system"): its storage is
				   * reached over SSH (has_ssh is then always true); false for
				   * "qemu:///system", "qemu:///session": this machine */
	bool has_ssh;             /* an ssh mapping was given */
	vp_spec_ssh ssh;
	unsigned max_clones;      /* this pool's clones the host may hold, 0..10000; 0: no new ones
				   * (drain); VP_SPEC_UNLIMITED (default): no limit but capacity */
	unsigned cpu_overcommit_milli;    /* vCPUs per physical CPU, in thousandths (4.0 = 4000);
					   * default placement.cpu_overcommit */
	unsigned memory_overcommit_milli; /* guest memory per byte of RAM, in thousandths;
					   * default placement.memory_overcommit */
} vp_spec_host;

typedef struct vp_spec_gc {
	unsigned keep;            /* newest unreferenced base versions kept per name, 0..1000, default 2 */
} vp_spec_gc;

/* placement: how new clones are given hosts; never part of the spec hash
 * (where a clone runs is not part of what it is). */
typedef struct vp_spec_placement {
	vp_spec_policy policy;    /* default spread */
	unsigned cpu_overcommit_milli;    /* 100..64000 (0.1..64), default 4000 (4.0) */
	unsigned memory_overcommit_milli; /* 100..64000 (0.1..64), default 1000 (1.0) */
} vp_spec_placement;

/* distribution: shipping base versions to hosts. */
typedef struct vp_spec_distribution {
	unsigned max_parallel_hosts; /* hosts receiving a base at once, 1..1000, default 4 */
	bool fanout;                 /* hosts holding a version push it on to others, default false */
	const char *seed_vdipool;    /* absolute path of vdipool on the hosts; NULL: "vdipool" (PATH) */
	const char *seed_identity;   /* absolute path, on the hosts, of the key a seed logs in with */
	const char *seed_known_hosts; /* absolute path, on the hosts; NULL: the seed user's default */
} vp_spec_distribution;

typedef struct vp_spec_internal vp_spec_internal;

typedef struct vp_spec {
	const char *file;         /* the display name given to load/parse */
	const char *pool;         /* pool.name */
	vp_spec_base base;
	vp_spec_storage storage;
	vp_spec_clones clones;
	vp_spec_delta delta;
	vp_spec_data_disk data_disk;
	vp_spec_domain domain;
	vp_spec_rollout rollout;
	size_t host_count;        /* >= 1; default one host "local" at qemu:///system; order matters:
				   * it breaks placement ties */
	const vp_spec_host *hosts;
	vp_spec_gc gc;
	vp_spec_placement placement;
	vp_spec_distribution distribution;
	/* readiness: when a running clone with an address is ready (`apply --wait ready`,
	 * `status`): the command (argc 0: none, running + an address suffices) gets
	 * VDIPOOL_CLONE and VDIPOOL_ADDRESS; timeout_sec bounds one run of it (1..3600,
	 * default 30). Not part of the spec hash. */
	vp_spec_health readiness;
	vp_spec_internal *internal; /* positions and memory; not for callers */
} vp_spec;

/* Where a key was written: 1-based line and column of the key itself and of
 * its value (for a mapping or sequence value, the value position is the key's). */
typedef struct vp_spec_loc {
	unsigned key_line, key_column;
	unsigned line, column;
} vp_spec_loc;

/* Reads and validates the spec at `path` (the name errors show). Files over
 * VP_SPEC_MAX_BYTES are refused before reading. On error returns a negative
 * code, leaves *out NULL and records the message: VP_ERR_SPEC/VP_EINVAL with
 * "FILE:LINE:COLUMN: KEY.PATH: what is wrong" for anything in the file, an
 * OS error when the file cannot be read. Only the first error is reported,
 * in this order: bytes (size, UTF-8, control characters), YAML syntax,
 * structure (nesting, aliases, tags, duplicate keys, several documents),
 * then the schema in document order, then checks across sections. *out is
 * the caller's: vp_spec_free() it. */
VP_API int vp_spec_load(vp_spec **out, const char *path);

/* The same for a buffer of `len` bytes (no NUL needed); `display_name` is
 * used in messages ("<input>" when NULL). Templates are still resolved on
 * the file system. */
VP_API int vp_spec_parse(vp_spec **out, const char *display_name, const char *data, size_t len);

/* Accepts NULL. */
VP_API void vp_spec_free(vp_spec *spec);

/* Renders the name of the clone with index `index` (not a position: the
 * first clone is clones.start_index) into buf. 0, or VP_EINVAL when buf is
 * too small. */
VP_API int vp_spec_clone_name(const vp_spec *spec, unsigned index, char *buf, size_t len);

/* SHA-256 (lowercase hex) of everything in the spec that shapes a clone's
 * domain definition: pool, mode, vcpus, memory, network, the template's
 * content, the delta tier and the data disk. Key order, comments and
 * defaults written out or left implicit do not change it; the base version
 * does not either (the planner compares it on its own), nor hosts,
 * placement, rollout or distribution keys: where a clone runs is not part
 * of what it is. 0 or VP_ENOMEM. */
VP_API int vp_spec_hash(const vp_spec *spec, char out[VP_SPEC_HASH_LEN]);
/* The same, for domains of the given libvirt domain type ("kvm", or "qemu"
 * for TCG, which changes the hash; NULL: as vp_spec_hash): a pool whose host
 * changes accelerator gets its definitions updated. */
VP_API int vp_spec_domain_hash(const vp_spec *spec, const char *domain_type, char out[VP_SPEC_HASH_LEN]);

/* Where `path` was written. Returns 0 when it was; VP_ENOENT when it was not
 * (left to its default) and *out then holds the nearest enclosing key that
 * was written, or the top of the file. */
VP_API int vp_spec_locate(const vp_spec *spec, const char *path, vp_spec_loc *out);

/* Records an error against a spec position so that later stages report in
 * the spec's own shape: "FILE:LINE:COLUMN: PATH: message". Returns
 * VP_EINVAL (class VP_ERR_SPEC), for `return vp_spec_error(...)`. */
VP_API int vp_spec_error(const vp_spec *spec, const char *path, const char *fmt, ...) VP_PRINTF(3, 4);

/* The directories (colon-separated) searched for a template name before the
 * installed and the source tree's templates; NULL: none. Set it once at
 * start-up, before specs are loaded (the CLI passes $VDIPOOL_TEMPLATE_PATH).
 * The string is copied. 0 or VP_ENOMEM. */
VP_API int vp_spec_set_template_path(const char *dirs);

/* Finds a domain template. A name with a '/' must be an absolute path to a
 * readable regular file. Otherwise `name` follows the object name rule and
 * NAME.xml is looked for in each directory of $VDIPOOL_TEMPLATE_PATH
 * (colon-separated, empty entries skipped), then the installed template
 * directory, then the source tree's templates/ (so a build-tree run works).
 * *out is the caller's (free()). VP_ENOENT when not found, VP_EINVAL for a
 * bad name; the message says where it looked. */
VP_API int vp_spec_find_template(char **out, const char *name);

/* A duration in the spec's syntax ("90", "30s", "5m", "1h30m") in seconds;
 * -1 when malformed or over 10^9 s. For options that take one (--timeout). */
VP_API int64_t vp_spec_parse_duration(const char *text);

#ifdef __cplusplus
}
#endif
#endif
