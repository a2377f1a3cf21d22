"""The `bookrec` command line."""
