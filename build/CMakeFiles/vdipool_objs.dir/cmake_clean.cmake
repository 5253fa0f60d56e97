file(REMOVE_RECURSE
  "CMakeFiles/vdipool_objs.dir/lib/error.c.o"
  "CMakeFiles/vdipool_objs.dir/lib/error.c.o.d"
  "CMakeFiles/vdipool_objs.dir/lib/util/fs.c.o"
  "CMakeFiles/vdipool_objs.dir/lib/util/fs.c.o.d"
  "CMakeFiles/vdipool_objs.dir/lib/util/run.c.o"
  "CMakeFiles/vdipool_objs.dir/lib/util/run.c.o.d"
  "CMakeFiles/vdipool_objs.dir/lib/util/util.c.o"
  "CMakeFiles/vdipool_objs.dir/lib/util/util.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vdipool_objs.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
