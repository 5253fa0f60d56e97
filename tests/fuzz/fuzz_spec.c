/* fuzz_spec.c: libFuzzer target: any bytes given as a pool spec get a spec or one positioned error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vdipool/error.h"
#include "vdipool/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vp_spec *spec = NULL;
	int rc = vp_spec_parse(&spec, "fuzz.yaml", (const char *)data, size);

	if (rc == 0) {
		char name[64], hash[VP_SPEC_HASH_LEN];
		if (!spec || !spec->pool || spec->clones.count < 1 || spec->host_count < 1)
			abort();
		if (vp_spec_clone_name(spec, spec->clones.start_index, name, sizeof(name)) != 0 ||
		    vp_spec_hash(spec, hash) != 0)
			abort();
		vp_spec_free(spec);
		return 0;
	}
	/* Every refusal has the promised shape: "fuzz.yaml:LINE:COL: ..." and no spec. */
	if (spec || (rc == VP_EINVAL && strncmp(vp_error_last()->message, "fuzz.yaml:", 10) != 0))
		abort();
	return 0;
}
