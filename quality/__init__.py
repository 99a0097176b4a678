"""Dedup, filters, language ID and validation of the translated dataset."""
