# Empty compiler generated dependencies file for vdipool_objs.
# This may be replaced when dependencies are built.
