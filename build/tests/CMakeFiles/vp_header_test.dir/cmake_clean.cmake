file(REMOVE_RECURSE
  "CMakeFiles/vp_header_test.dir/headers/hdr_common.c.o"
  "CMakeFiles/vp_header_test.dir/headers/hdr_common.c.o.d"
  "CMakeFiles/vp_header_test.dir/headers/hdr_error.c.o"
  "CMakeFiles/vp_header_test.dir/headers/hdr_error.c.o.d"
  "CMakeFiles/vp_header_test.dir/headers/hdr_version.c.o"
  "CMakeFiles/vp_header_test.dir/headers/hdr_version.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vp_header_test.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
