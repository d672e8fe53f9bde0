"""The model's context length for whole-text scoring, and texts cut to fit it (one warning per task)."""

from __future__ import annotations

import logging

from unlearn_tasks.errors import MetadataError

logger = logging.getLogger(__name__)

#: lm-eval's HFLM: the config attributes it reads for the context length, and its fallback.
CONFIG_LENGTH_ATTRIBUTES = ("n_positions", "max_position_embeddings", "n_ctx")
DEFAULT_MAX_LENGTH = 2048
UNSET_TOKENIZER_LENGTH = 1000000000000000019884624838656


def model_max_length(metadata: dict, tokenizer) -> int:
    """The context length lm-eval's HF model uses: ``max_length`` from the model args, else the model
    config's, else the tokenizer's (when set), else 2048."""
    if metadata.get("max_length"):
        try:
            length = int(metadata["max_length"])
        except (TypeError, ValueError):
            length = 0
        if length < 1:
            raise MetadataError(f"max_length must be a positive number of tokens, got {metadata['max_length']!r}")
        return length
    pretrained = metadata.get("pretrained")
    if isinstance(pretrained, str):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(pretrained, trust_remote_code=bool(metadata.get("trust_remote_code")))
        for attribute in CONFIG_LENGTH_ATTRIBUTES:
            if getattr(config, attribute, None):
                return int(getattr(config, attribute))
    length = getattr(tokenizer, "model_max_length", None)
    return DEFAULT_MAX_LENGTH if not length or length == UNSET_TOKENIZER_LENGTH else int(length)


class ContextLimit:
    """Cuts a text to its first ``max_length`` tokens (what one forward pass after the prefix token can
    score), at a character boundary that re-tokenises within the limit."""

    def __init__(self, tokenizer, metadata: dict):
        self.tokenizer = tokenizer
        self.max_length = model_max_length(metadata, tokenizer)
        self.warned = False
        self._fitted: dict[str, str] = {}

    def fit(self, text: str) -> str:
        if text not in self._fitted:
            self._fitted[text] = self._cut(text)
        return self._fitted[text]

    def _cut(self, text: str) -> str:
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        if len(offsets) <= self.max_length:
            return text
        keep = self.max_length
        while len(self.tokenizer(text[: offsets[keep - 1][1]], add_special_tokens=False)["input_ids"]) > self.max_length:
            keep -= 1
        if not self.warned:
            self.warned = True
            logger.warning(
                "a text of %d tokens is longer than the model's context (%d tokens): privleak texts are cut to "
                "their first %d tokens (this and any later ones; see docs/metrics.md, MUSE)",
                len(offsets), self.max_length, self.max_length,
            )
        return text[: offsets[keep - 1][1]]
