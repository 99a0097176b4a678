"""Mixtures, prompt templates, TRL SFT with LoRA, and evaluation."""
