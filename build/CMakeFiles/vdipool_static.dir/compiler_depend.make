# Empty compiler generated dependencies file for vdipool_static.
# This may be replaced when dependencies are built.
