# Empty compiler generated dependencies file for vp_header_test.
# This may be replaced when dependencies are built.
