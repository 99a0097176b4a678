"""Build the multilingual dataset: ingest, segment, translate, assemble, export, hub, models, cli."""
