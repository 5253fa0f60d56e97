/* vdipool/ssh.h: SSH sessions (libssh2): host keys, auth, remote commands, SFTP, pushing images. */
#ifndef VDIPOOL_SSH_H
#define VDIPOOL_SSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One SSH connection to one host, with its SFTP channel opened on first use.
 * Opaque; not thread-safe (one per thread). */
typedef struct vp_ssh vp_ssh;

typedef struct vp_ssh_opts {
	const char *host;        /* name or address (required) */
	int port;                /* 0: 22 */
	const char *user;        /* required */
	const char *identity;    /* private key file; NULL: keys offered by ssh-agent */
	const char *passphrase;  /* of identity; NULL: none */
	const char *known_hosts; /* OpenSSH known_hosts file the host key must be in (required) */
	double timeout;          /* seconds for connecting and for each network wait; 0: 30 */
	bool compress;           /* offer zlib transport compression (zlib@openssh.com, zlib) */
} vp_ssh_opts;

/* Connects over TCP, checks the host key against opts->known_hosts (an
 * unknown or changed key is refused: VP_ECONFLICT, the message carrying the
 * key's SHA256: fingerprint and the file to add it to), then authenticates.
 * Errors are VP_ERR_SSH with libssh2's text kept. Free with vp_ssh_free. */
VP_API int vp_ssh_connect(vp_ssh **out, const vp_ssh_opts *opts);
VP_API void vp_ssh_free(vp_ssh *s);

/* "user@host:port"; borrowed, lives as long as s. */
VP_API const char *vp_ssh_label(const vp_ssh *s);
/* The host key's fingerprint, "SHA256:base64" like ssh-keygen -l; borrowed. */
VP_API const char *vp_ssh_fingerprint(const vp_ssh *s);
/* The cipher negotiated for what the session sends, e.g. "aes128-ctr"; borrowed. */
VP_API const char *vp_ssh_cipher(const vp_ssh *s);
/* True when the session compresses what it sends (zlib was negotiated). */
VP_API bool vp_ssh_compressed(const vp_ssh *s);
/* Bytes written to and read from the TCP socket so far (the wire, after
 * compression and encryption). Either pointer may be NULL. */
VP_API void vp_ssh_wire_bytes(const vp_ssh *s, uint64_t *sent, uint64_t *received);

/* ---- remote commands ----------------------------------------------------------- */

typedef struct vp_ssh_exec_result {
	int exit_status;     /* valid when exit_signal is "" */
	char exit_signal[32]; /* "KILL" when killed by SIGKILL, else "" */
	char *out;           /* captured stdout, NUL-terminated (never NULL after success) */
	size_t out_len;
	char *err;           /* captured stderr, NUL-terminated */
	size_t err_len;
} vp_ssh_exec_result;

/* Runs `command` through the remote user's shell (quote arguments with
 * vp_ssh_quote) and waits at most `timeout` seconds (0: the session's).
 * Returns 0 when it ran, whatever its exit status; res is the caller's:
 * release with vp_ssh_exec_result_release. Output beyond 16 MiB is refused. */
VP_API int vp_ssh_exec(vp_ssh *s, const char *command, double timeout, vp_ssh_exec_result *res);
VP_API void vp_ssh_exec_result_release(vp_ssh_exec_result *res);

/* One shell word for a POSIX shell: 'it'\''s'. Caller frees; NULL out of memory. */
VP_API char *vp_ssh_quote(const char *arg);

/* ---- SFTP ------------------------------------------------------------------------ */

typedef struct vp_ssh_stat {
	uint64_t size;
	unsigned mode;     /* st_mode bits: type and permissions */
	int64_t mtime;     /* seconds (SFTP v3 has no finer time); 0 when the server says none */
} vp_ssh_stat;

/* VP_ENOENT when path does not exist (no error text is needed by the caller then). */
VP_API int vp_ssh_stat_path(vp_ssh *s, const char *path, vp_ssh_stat *out);
/* mkdir -p: creates missing directories with `mode`. */
VP_API int vp_ssh_mkdir_p(vp_ssh *s, const char *path, unsigned mode);
/* Renames; refused (never replaces) when `to` exists. */
VP_API int vp_ssh_rename(vp_ssh *s, const char *from, const char *to);
VP_API int vp_ssh_chmod(vp_ssh *s, const char *path, unsigned mode);
/* Removes a file; a missing one is not an error. */
VP_API int vp_ssh_unlink(vp_ssh *s, const char *path);
/* Removes an empty directory; a missing one is not an error, a non-empty one is (VP_EIO). */
VP_API int vp_ssh_rmdir(vp_ssh *s, const char *dir);
/* Removes a directory and the files directly in it (not subdirectories). */
VP_API int vp_ssh_rmdir_files(vp_ssh *s, const char *dir);
/* The names in dir, without "." and ".."; *out is the caller's: free each and the array. */
VP_API int vp_ssh_list_dir(vp_ssh *s, const char *dir, char ***out, size_t *n);
/* Reads a whole small remote file (at most max bytes), NUL-terminated; caller frees. */
VP_API int vp_ssh_read_file(vp_ssh *s, const char *path, size_t max, char **out, size_t *len);
/* Creates or replaces path with data, flushed to the host's disk (fsync@openssh.com). */
VP_API int vp_ssh_write_file(vp_ssh *s, const char *path, const void *data, size_t len,
			     unsigned mode);

/* A remote file open for reading (SFTP handle); not thread-safe, like its session. */
typedef struct vp_ssh_file vp_ssh_file;

/* Opens path for reading; *size (may be NULL) is its size. VP_ENOENT when missing.
 * Close with vp_ssh_file_close before the session is freed. */
VP_API int vp_ssh_file_open(vp_ssh *s, const char *path, vp_ssh_file **out, uint64_t *size);
/* Reads exactly len bytes at off; VP_EIO (naming host and path) on a short read. */
VP_API int vp_ssh_file_pread(vp_ssh_file *f, void *buf, size_t len, uint64_t off);
VP_API void vp_ssh_file_close(vp_ssh_file *f);

/* Uploads local file `local` to `remote` (created or truncated with `mode`): only
 * its allocated extents are written, pipelined (`window` bytes per write, 0: 4 MiB),
 * the size set so trailing holes stay holes, then flushed (fsync@openssh.com). No
 * hashing, no resume, no rename: callers write a temporary name and publish it. */
VP_API int vp_ssh_upload_sparse(vp_ssh *s, const char *local, const char *remote, unsigned mode,
				size_t window);

/* ---- pushing an image ---------------------------------------------------------- */

/* Called as bytes of data are acknowledged by the host: done of total (the
 * image's allocated bytes, what is already on the host counted as done). */
typedef void (*vp_ssh_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct vp_ssh_push_opts {
	const char *sha256;          /* expected SHA-256 of the file, lowercase hex (required) */
	vp_ssh_progress_fn progress; /* NULL: none */
	void *progress_ctx;
	size_t window;               /* bytes handed to one pipelined SFTP write; 0: 4 MiB */
	uint64_t checkpoint;         /* bytes between two resume records; 0: 16 MiB */
} vp_ssh_push_opts;

typedef struct vp_ssh_push_result {
	uint64_t size;       /* the file's size (its holes included) */
	uint64_t data;       /* allocated bytes (extents) of the local file */
	uint64_t sent;       /* data bytes written by this push */
	uint64_t resumed;    /* data bytes a previous, interrupted push had delivered */
	uint64_t wire_sent;  /* bytes this push wrote to the socket */
	double seconds;      /* the whole push */
	double hash_seconds; /* of which the check on the host (reads the whole file, holes too) */
	char sha256[65];     /* what the host computed */
} vp_ssh_push_result;

/* Pushes local file `local` (raw or qcow2; its holes stay holes) to `remote`
 * on the host: only allocated extents are sent, pipelined, into ".NAME.part"
 * beside remote, with a resume record ".NAME.part.state" so that a push after
 * an interrupted one continues where the acknowledged data ended. The host
 * then computes the SHA-256 (vp_ssh_sha256 over an exec channel); a match is made
 * read-only (0444) and renamed to `remote`, a mismatch deletes the partial
 * file and fails (VP_EIO) with both hashes. VP_EEXIST when remote exists. */
VP_API int vp_ssh_push_file(vp_ssh *s, const char *local, const char *remote,
			    const vp_ssh_push_opts *opts, vp_ssh_push_result *out);

/* SHA-256 of a remote file (absolute path) computed on the host, lowercase hex:
 * `openssl dgst -sha256 -r`, or `sha256sum -b` where openssl is not installed. */
VP_API int vp_ssh_sha256(vp_ssh *s, const char *path, char out[65]);

#ifdef __cplusplus
}
#endif
#endif
