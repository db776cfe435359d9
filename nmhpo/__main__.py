"""`python -m nmhpo` runs the CLI (used by tests that start real processes)."""

from nmhpo.cli import main

main()
