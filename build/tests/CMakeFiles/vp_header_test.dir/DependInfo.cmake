
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/build/tests/headers/hdr_common.c" "tests/CMakeFiles/vp_header_test.dir/headers/hdr_common.c.o" "gcc" "tests/CMakeFiles/vp_header_test.dir/headers/hdr_common.c.o.d"
  "/work/main/build/tests/headers/hdr_error.c" "tests/CMakeFiles/vp_header_test.dir/headers/hdr_error.c.o" "gcc" "tests/CMakeFiles/vp_header_test.dir/headers/hdr_error.c.o.d"
  "/work/main/build/tests/headers/hdr_version.c" "tests/CMakeFiles/vp_header_test.dir/headers/hdr_version.c.o" "gcc" "tests/CMakeFiles/vp_header_test.dir/headers/hdr_version.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
