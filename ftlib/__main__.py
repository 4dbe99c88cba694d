"""`python -m ftlib` runs the CLI."""

from ftlib.cli import main

main()
