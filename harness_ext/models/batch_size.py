"""``batch_size`` of ``unlearn_hf``'s scoring: a number as given; ``auto`` as described below.

``auto`` on a GPU is lm-eval's own probe (:func:`harness_ext.lm_eval_internals.detect_batch_size`): the
largest batch of the call's longest input, from ``--max_batch_size`` (default 64) down, that a forward
pass with full-vocabulary logits fits in memory. Our scoring applies the output head only at scored
positions, so the probe is conservative. It runs once per ``loglikelihood`` call (five forward passes).
On a CPU there is no out-of-memory error to probe for, and the probe itself (five forward passes at
``--max_batch_size``) would cost more than it saves: ``auto`` is ``--max_batch_size``.
Generation batches are lm-eval's (``HFLM.generate_until`` handles ``auto`` itself).
"""

from __future__ import annotations

from harness_ext.lm_eval_internals import detect_batch_size


def scoring_batch_size(lm, inputs: list[tuple]) -> int:
    """How many of ``inputs`` (model inputs, longest first) to forward at once."""
    if str(lm.batch_size) != "auto":
        return int(lm.batch_size)
    if lm.device.type != "cuda":
        return int(lm.max_batch_size)
    return detect_batch_size(lm, len(inputs[0]) if inputs else 1)
