"""CLI commands, one module per area. Each module has `register(app, model_app)`; heavy libraries
(torch, transformers, ctranslate2, great_expectations) are imported inside command bodies so that
`polyinstruct --help` and bad-argument errors are instant."""
