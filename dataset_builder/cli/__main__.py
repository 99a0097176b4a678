"""`python -m dataset_builder.cli ARGS` runs `polyinstruct ARGS`."""

from dataset_builder.cli.app import main

main()
