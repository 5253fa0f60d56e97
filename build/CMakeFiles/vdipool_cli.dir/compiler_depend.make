# Empty compiler generated dependencies file for vdipool_cli.
# This may be replaced when dependencies are built.
