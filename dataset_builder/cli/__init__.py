"""The roof: the one CLI, `polyinstruct` (app.py), its shared options (options.py) and one command module
per area (commands/). Nothing in the project imports this package.

`main` is re-exported for console scripts installed before the entry point became
`dataset_builder.cli.app:main` (a reinstall, `pip install -e .`, makes this line unneeded)."""

from dataset_builder.cli.app import main

__all__ = ["main"]
