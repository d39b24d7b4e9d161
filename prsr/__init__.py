"""The `prsr` command line (thin: argument parsing and dispatch into the toolkit's packages)."""
