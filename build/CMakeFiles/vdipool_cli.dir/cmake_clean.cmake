file(REMOVE_RECURSE
  "CMakeFiles/vdipool_cli.dir/cmd/vdipool/main.c.o"
  "CMakeFiles/vdipool_cli.dir/cmd/vdipool/main.c.o.d"
  "CMakeFiles/vdipool_cli.dir/lib/util/fs.c.o"
  "CMakeFiles/vdipool_cli.dir/lib/util/fs.c.o.d"
  "CMakeFiles/vdipool_cli.dir/lib/util/run.c.o"
  "CMakeFiles/vdipool_cli.dir/lib/util/run.c.o.d"
  "CMakeFiles/vdipool_cli.dir/lib/util/util.c.o"
  "CMakeFiles/vdipool_cli.dir/lib/util/util.c.o.d"
  "bin/vdipool"
  "bin/vdipool.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vdipool_cli.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
