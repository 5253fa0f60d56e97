/* bench_luks.c: what an encrypted delta costs: qemu-img create with LUKS (as vdipool runs it) against
 * a plain qemu-img create and our native writer, and the crypto a native LUKS1 header would need. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "vdipool/qcow2.h"
#include "util/run.h"
#include "util/util.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double child_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static int run_qemu_img(const char *out, const char *base, int keyfd)
{
	char obj[64], opts[8192];
	vp_run_opts ro = { .keep_fd = keyfd };

	snprintf(obj, sizeof(obj), "secret,id=s0,file=/proc/self/fd/%d", keyfd);
	snprintf(opts, sizeof(opts), "%sbacking_file=%s,backing_fmt=qcow2,cluster_size=131072,extended_l2=on,"
		 "preallocation=metadata",
		 keyfd >= 0 ? "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10," : "", base);
	if (keyfd >= 0) {
		const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "--object", obj, "-o", opts, out, NULL };
		return vp_run_ok(argv, &ro, NULL);
	}
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, out, NULL };
	return vp_run_ok(argv, NULL, NULL);
}

/* LUKS1's anti-forensic split with SHA-256 diffusion, as cryptsetup and QEMU do it. */
static void diffuse(unsigned char *d, size_t len)
{
	unsigned char md[32];

	for (uint32_t i = 0; i * 32 < len; i++) {
		size_t n = len - i * 32 < 32 ? len - i * 32 : 32;
		uint32_t be = htobe32(i);
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		EVP_DigestInit_ex(c, EVP_sha256(), NULL);
		EVP_DigestUpdate(c, &be, 4);
		EVP_DigestUpdate(c, d + i * 32, n);
		EVP_DigestFinal_ex(c, md, NULL);
		EVP_MD_CTX_free(c);
		memcpy(d + i * 32, md, n);
	}
}

/* The crypto of one LUKS1 header with one key slot (aes-256-xts-plain64, sha256, 4000 stripes,
 * 1000 PBKDF2 iterations each for the digest and the slot, QEMU's minimum). */
static void native_header(const unsigned char *pass, size_t plen, unsigned char *material)
{
	enum { KEY = 64, STRIPES = 4000 };
	unsigned char mk[KEY], salt[32], digest[20], slotkey[KEY], d[KEY], *split = material;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl;

	RAND_bytes(mk, sizeof(mk));
	RAND_bytes(salt, sizeof(salt));
	PKCS5_PBKDF2_HMAC((const char *)mk, KEY, salt, 32, 1000, EVP_sha256(), 20, digest);
	RAND_bytes(salt, sizeof(salt));
	PKCS5_PBKDF2_HMAC((const char *)pass, (int)plen, salt, 32, 1000, EVP_sha256(), KEY, slotkey);
	memset(d, 0, KEY);
	RAND_bytes(split, (STRIPES - 1) * KEY);
	for (int s = 0; s < STRIPES - 1; s++) {
		for (int i = 0; i < KEY; i++)
			d[i] ^= split[s * KEY + i];
		diffuse(d, KEY);
	}
	for (int i = 0; i < KEY; i++)
		split[(STRIPES - 1) * KEY + i] = d[i] ^ mk[i];
	for (uint64_t sec = 0; sec * 512 < STRIPES * KEY; sec++) {
		unsigned char iv[16] = { 0 };
		uint64_t le = htole64(sec);
		memcpy(iv, &le, 8);
		EVP_EncryptInit_ex(c, EVP_aes_256_xts(), NULL, slotkey, iv);
		EVP_EncryptUpdate(c, split + sec * 512, &outl, split + sec * 512, 512);
	}
	EVP_CIPHER_CTX_free(c);
}

int main(int argc, char **argv)
{
	int n = 5, opt, fd;
	char dir[] = "/var/tmp/vp-bench-luks-XXXXXX", base[256], out[300];
	unsigned char key[45] = "0123456789abcdef0123456789abcdef0123456789ab", *material;
	double t, c, plain_ms, plain_cpu, luks_ms, luks_cpu, native_ms, crypto_ms;
	vp_qcow2_create_opts o;

	while ((opt = getopt(argc, argv, "n:")) != -1)
		n = atoi(optarg);
	if (!mkdtemp(dir))
		return 1;
	snprintf(base, sizeof(base), "%s/base.qcow2", dir);
	{
		const char *a[] = { "qemu-img", "create", "-q", "-f", "qcow2", base, "20G", NULL };
		if (vp_run_ok(a, NULL, NULL) < 0)
			return fprintf(stderr, "%s\n", vp_error_last()->message), 1;
	}
	fd = memfd_create("bench-key", MFD_CLOEXEC);
	if (fd < 0 || write(fd, key, 44) != 44)
		return 1;
	t = now(), c = child_cpu();
	for (int i = 0; i < n; i++) {
		snprintf(out, sizeof(out), "%s/p%d.qcow2", dir, i);
		if (run_qemu_img(out, base, -1) < 0)
			return fprintf(stderr, "%s\n", vp_error_last()->message), 1;
	}
	plain_ms = (now() - t) * 1000 / n, plain_cpu = (child_cpu() - c) * 1000 / n;
	t = now(), c = child_cpu();
	for (int i = 0; i < n; i++) {
		snprintf(out, sizeof(out), "%s/l%d.qcow2", dir, i);
		if (run_qemu_img(out, base, fd) < 0)
			return fprintf(stderr, "%s\n", vp_error_last()->message), 1;
	}
	luks_ms = (now() - t) * 1000 / n, luks_cpu = (child_cpu() - c) * 1000 / n;
	vp_qcow2_create_opts_init(&o);
	o.backing_file = base;
	o.backing_format = "qcow2";
	o.cluster_size = 131072;
	o.extended_l2 = true;
	o.prealloc = VP_QCOW2_PREALLOC_METADATA;
	t = now();
	for (int i = 0; i < n; i++) {
		snprintf(out, sizeof(out), "%s/n%d.qcow2", dir, i);
		if (vp_qcow2_create(out, &o) < 0)
			return fprintf(stderr, "%s\n", vp_error_last()->message), 1;
	}
	native_ms = (now() - t) * 1000 / n;
	material = malloc(4000 * 64);
	t = now();
	for (int i = 0; i < n; i++)
		native_header(key, 44, material);
	crypto_ms = (now() - t) * 1000 / n;
	free(material);
	printf("per encrypted-capable delta (20 GiB base, 128K clusters, extended L2, preallocated), %d each:\n", n);
	printf("  qemu-img create, plain                      %8.1f ms  (%7.1f ms CPU)\n", plain_ms, plain_cpu);
	printf("  qemu-img create, LUKS (iter-time 10 ms)     %8.1f ms  (%7.1f ms CPU)\n", luks_ms, luks_cpu);
	printf("  vdipool native writer, plain (durable)      %8.1f ms\n", native_ms);
	printf("  crypto of a native LUKS1 header (1 slot)    %8.2f ms\n", crypto_ms);
	printf("ratio qemu-img LUKS / qemu-img plain = %.1f; LUKS / native plain = %.0f; "
	       "LUKS / (native plain + header crypto) = %.0f\n",
	       luks_ms / plain_ms, luks_ms / native_ms, luks_ms / (native_ms + crypto_ms));
	{
		const char *a[] = { "rm", "-rf", dir, NULL };
		vp_run_ok(a, NULL, NULL);
	}
	return 0;
}
