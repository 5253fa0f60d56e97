tests/CMakeFiles/vp_header_test.dir/headers/hdr_version.c.o: \
 /work/main/build/tests/headers/hdr_version.c /usr/include/stdc-predef.h \
 /work/main/lib/include/vdipool/version.h \
 /work/main/lib/include/vdipool/common.h
