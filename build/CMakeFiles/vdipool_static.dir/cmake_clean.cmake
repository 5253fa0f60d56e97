file(REMOVE_RECURSE
  "libvdipool.a"
  "libvdipool.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vdipool_static.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
