# Empty compiler generated dependencies file for vdipool.
# This may be replaced when dependencies are built.
