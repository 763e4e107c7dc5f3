"""The `dualforce` command line."""
