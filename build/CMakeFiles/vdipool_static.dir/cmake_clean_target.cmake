file(REMOVE_RECURSE
  "libvdipool.a"
)
