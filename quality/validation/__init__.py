"""The Great Expectations suite that guards data/filtered before export: suites.py (the expectations, and
why they run this way), derive.py (the data they read), run.py (validate_dataset), report.py (the result)."""
