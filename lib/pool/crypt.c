/* crypt.c: LUKS-encrypted clone disks (delta.encrypt: luks): a fresh random key per disk, handed to
 * the backend in memory, kept only in a private libvirt secret named by the disk's LUKS UUID. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pool/pool_int.h"

/* 32 random bytes as base64: a 256-bit passphrase that is also plain text (44 characters), so that
 * an administrator can hand it to qemu-img by hand (from libvirt's secret store) if ever needed. */
#define KEY_RAW 32
#define KEY_LEN 44

/* The passphrase in an anonymous memory file: qemu-img reads it as /proc/self/fd/N. */
static int key_memfd(const unsigned char *key, size_t len)
{
	int fd = memfd_create("vdipool-luks-key", MFD_CLOEXEC);
	size_t done = 0;

	if (fd < 0)
		return vp_error_set_os(errno, "cannot make a memory file for a disk key");
	while (done < len) {
		ssize_t w = write(fd, key + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			return vp_error_set_os(e, "cannot write a disk key to its memory file");
		}
		done += (size_t)w;
	}
	return fd;
}

int pool_luks_create(vp_pool *p, disk_tier *t, vp_delta_request *req, vp_image_info *info)
{
	unsigned char raw[KEY_RAW], key[KEY_LEN + 1];
	char uuid[37], what[2 * VP_PLUGIN_NAME_MAX + 16];
	int fd = -1, rc;

	if (!(t->ops->capabilities & VP_CAP_ENCRYPT_LUKS))
		return vp_error_set(VP_ERR_EXEC, VP_ENOTSUP, "tier '%s' (backend '%s') cannot make "
				    "LUKS-encrypted disks", t->spec->name, t->ops->name);
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return vp_error_set(VP_ERR_EXEC, VP_EIO, "no random bytes for a disk key");
	EVP_EncodeBlock(key, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	if ((fd = key_memfd(key, KEY_LEN)) < 0) {
		rc = fd;
		goto out;
	}
	req->flags |= VP_DELTA_ENCRYPT_LUKS;
	req->secret_fd = fd;
	if ((rc = t->ops->delta_create(t->handle, req, info)) < 0)
		goto out;
	snprintf(what, sizeof(what), "%s/%s %s", req->pool, req->clone,
		 req->kind == VP_DISK_DATA ? "data disk" : "delta");
	/* The disk names its secret: the secret's UUID is its LUKS header's. A crash before the
	 * secret is set leaves a disk nobody can open; define_domain finds it so (pool_luks_secret). */
	if ((rc = vp_qcow2_read_luks_uuid(info->location, uuid)) < 0 ||
	    (rc = vp_virt_luks_secret_set(p->virt, uuid, info->location, what, key, KEY_LEN)) < 0) {
		vp_error_prefix("%s '%s'", req->kind == VP_DISK_DATA ? "data disk" : "delta", info->location);
		/* A new disk whose key could not be kept is of no use: it goes (the error stays). */
		if (!(req->flags & VP_DELTA_OVERWRITE)) {
			char *msg = vp_strdup(vp_error_last()->message);
			t->ops->delta_remove(t->handle, req->kind, req->pool, req->clone);
			vp_error_set(VP_ERR_EXEC, rc, "%s", msg ? msg : "out of memory");
			free(msg);
		}
	}
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (fd >= 0)
		close(fd);
	return rc;
}

int pool_luks_secret(vp_pool *p, const char *location, char uuid[37])
{
	vp_qcow2_info qi;
	int rc;

	uuid[0] = '\0';
	if ((rc = vp_qcow2_read_info(&qi, location)) < 0)
		return rc;
	if (qi.crypt_method != 2)
		return LUKS_PLAIN;
	if ((rc = vp_qcow2_read_luks_uuid(location, uuid)) < 0 ||
	    (rc = vp_virt_luks_secret_exists(p->virt, uuid)) < 0)
		return rc;
	return rc ? LUKS_OK : LUKS_NO_SECRET;
}

int pool_luks_forget(vp_pool *p, disk_tier *t, int kind, const char *clone)
{
	vp_image_info info;
	int rc;

	/* Where it is, before it goes (a disk that cannot be read is removed all the same). */
	memset(&info, 0, sizeof(info));
	if (t->ops->delta_stat(t->handle, kind, p->spec->pool, clone, &info) < 0)
		info.location[0] = '\0';
	if ((rc = t->ops->delta_remove(t->handle, kind, p->spec->pool, clone)) < 0)
		return rc;
	return info.location[0] == '/' && p->virt ? vp_virt_luks_secret_remove(p->virt, info.location) : 0;
}
