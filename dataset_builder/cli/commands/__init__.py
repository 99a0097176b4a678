"""CLI commands, one module per area. Each module has `register(app, model_app)` (dataset_builder/cli/app.py
calls it) and imports only dataset_builder/cli/options.py and the stages it runs, never the app. Heavy libraries
(torch, transformers, ctranslate2, great_expectations) are imported inside the stages' function bodies, so that
`polyinstruct --help` and bad-argument errors are instant."""
