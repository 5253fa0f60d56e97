file(REMOVE_RECURSE
  "libvdipool.pdb"
  "libvdipool.so"
  "libvdipool.so.0"
  "libvdipool.so.0.1.0"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vdipool.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
