"""Contracts shared by every stage: record schemas, the params model, the language registry."""
