"""lm-eval models that return per-token details: ``unlearn_hf`` (transformers) and its relatives."""

from harness_ext.models.hf import TokenScores, UnlearnHFLM, has_token_details

__all__ = ["TokenScores", "UnlearnHFLM", "has_token_details"]
