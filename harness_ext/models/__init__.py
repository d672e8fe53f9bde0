"""lm-eval models that return per-token details: ``unlearn_hf`` (transformers) and its relatives."""

from harness_ext.models.hf import TokenScores, UnlearnHFLM, has_token_details
from harness_ext.models import probe  # noqa: E402,F401  (registers unlearn_probe)

__all__ = ["TokenScores", "UnlearnHFLM", "has_token_details"]
