# usr_image.sh: what the benchmarks that move or store base images share: an image holding what OS images hold.
# usr_image FILE VIRTUAL_GiB DATA_MiB EXTENTS: a raw FILE of VIRTUAL_GiB whose DATA_MiB of data
# (executables and libraries from /usr, concatenated) lie in EXTENTS extents spread evenly over it.
usr_image() {
	local f=$1 vsize=$2 data=$3 n=$4 ext gap i
	find /usr/lib /usr/bin /usr/libexec -type f -size +16k -print0 2>/dev/null | sort -z |
		xargs -0 cat 2>/dev/null | head -c $((data << 20)) >"$f.data" || true
	truncate -s "${vsize}G" "$f"
	ext=$((data / n)) gap=$((vsize * 1024 / n))
	for ((i = 0; i < n; i++)); do
		dd if="$f.data" of="$f" bs=1M skip=$((i * ext)) seek=$((i * gap)) count=$ext conv=notrunc status=none
	done
	rm -f "$f.data"
}
