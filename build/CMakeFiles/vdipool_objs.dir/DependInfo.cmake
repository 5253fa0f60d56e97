
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/lib/error.c" "CMakeFiles/vdipool_objs.dir/lib/error.c.o" "gcc" "CMakeFiles/vdipool_objs.dir/lib/error.c.o.d"
  "/work/main/lib/util/fs.c" "CMakeFiles/vdipool_objs.dir/lib/util/fs.c.o" "gcc" "CMakeFiles/vdipool_objs.dir/lib/util/fs.c.o.d"
  "/work/main/lib/util/run.c" "CMakeFiles/vdipool_objs.dir/lib/util/run.c.o" "gcc" "CMakeFiles/vdipool_objs.dir/lib/util/run.c.o.d"
  "/work/main/lib/util/util.c" "CMakeFiles/vdipool_objs.dir/lib/util/util.c.o" "gcc" "CMakeFiles/vdipool_objs.dir/lib/util/util.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
