tests/CMakeFiles/vp_header_test.dir/headers/hdr_error.c.o: \
 /work/main/build/tests/headers/hdr_error.c /usr/include/stdc-predef.h \
 /work/main/lib/include/vdipool/error.h \
 /work/main/lib/include/vdipool/common.h
