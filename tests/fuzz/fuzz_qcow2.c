/* fuzz_qcow2.c: libFuzzer target: the qcow2 header reader on arbitrary bytes must never misbehave. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vdipool/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the reader promises about an image it accepts; a broken promise is a crash. */
static void check_accepted(const vp_qcow2_info *in, size_t size)
{
	uint64_t cs = in->cluster_size;

	if (in->file_size != size || cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		abort();
	if (in->l1_size && (in->l1_table_offset % cs || in->l1_table_offset + (uint64_t)in->l1_size * 8 > size))
		abort();
	if (in->refcount_table_offset % cs ||
	    in->refcount_table_offset + (uint64_t)in->refcount_table_clusters * cs > size)
		abort();
	if (strlen(in->backing_file) > VP_QCOW2_MAX_BACKING_NAME || in->has_backing != (in->backing_file[0] != 0))
		abort();
	if (strlen(in->backing_format) > VP_QCOW2_MAX_FORMAT_NAME)
		abort();
	if (in->virtual_size > INT64_MAX || (in->version != 2 && in->version != 3))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vp_qcow2_info info;

	if (vp_qcow2_parse_buffer(&info, data, size, "fuzz") == 0)
		check_accepted(&info, size);
	return 0;
}
