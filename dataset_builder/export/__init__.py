"""Export: data/filtered/{flores}.parquet -> a folder laid out as a Hugging Face dataset repository
(schemas/export_layout.py). build.py writes it, splits.py assigns splits, licenses.py combines licences,
card.py renders the dataset card, verify.py loads it back."""
