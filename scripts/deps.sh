#!/usr/bin/env bash
# deps.sh: installs, with apt-get, everything vdipool needs to build, test and run (Debian 12).
set -euo pipefail

# Build + run time: compilers, the libraries we link, qemu-img/QEMU (and its rbd driver) and libvirt.
PACKAGES=(
	build-essential cmake pkg-config git ca-certificates
	libvirt-dev libyaml-dev libssh2-1-dev zlib1g-dev libssl-dev libxml2-dev libcunit1-dev
	qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
	dnsmasq-base iproute2 xz-utils zstd cpio busybox-static bc
	syslinux syslinux-common mtools dosfstools fdisk
	librbd-dev librados-dev qemu-block-extra
)
# Tests only: valgrind for leak checks, clang + its runtime for libFuzzer, sshd for the
# throw-away SSH test hosts (scripts/test-hosts-up.sh), rsync for the push benchmark, Ceph for the
# throw-away cluster of the rbd tests (scripts/ceph-up.sh), xfsprogs and strace for the reflink and
# flush checks of test_full_clones and test_stamp, and where test_luks's keys go.
TEST_PACKAGES=(valgrind clang libclang-rt-14-dev openssh-server rsync ceph-mon ceph-osd ceph-mgr ceph-common
	xfsprogs strace python3 man-db bash-completion prometheus)
# The Debian package (scripts/package.sh): debhelper builds it, lintian checks it (tests too).
PACKAGE_PACKAGES=(debhelper dpkg-dev fakeroot lintian man-db)

want=("${PACKAGES[@]}")
if [[ "${1:-}" == "--tests" ]]; then
	want+=("${TEST_PACKAGES[@]}" "${PACKAGE_PACKAGES[@]}")
elif [[ "${1:-}" == "--package" ]]; then
	want+=("${PACKAGE_PACKAGES[@]}")
fi

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	echo "deps: all ${#want[@]} packages present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
