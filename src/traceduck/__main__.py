"""``python -m traceduck`` runs the CLI."""

from .cli import main

main()
