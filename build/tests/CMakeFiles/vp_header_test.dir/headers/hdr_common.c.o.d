tests/CMakeFiles/vp_header_test.dir/headers/hdr_common.c.o: \
 /work/main/build/tests/headers/hdr_common.c /usr/include/stdc-predef.h \
 /work/main/lib/include/vdipool/common.h
