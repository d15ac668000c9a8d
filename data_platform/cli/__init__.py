"""The `data-platform` command line: a thin layer over typed library functions."""
