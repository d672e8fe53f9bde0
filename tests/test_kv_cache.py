"""``GrowingLayer`` holds what ``DynamicLayer`` holds, writing each step in place."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from harness_ext.models.kv_cache import ROOM, GrowingLayer, cache_argument


def _steps(count: int, rows: int = 3, generator=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = generator or torch.Generator().manual_seed(0)
    shape = lambda length: (rows, 2, length, 4)  # noqa: E731  (batch, heads, tokens, head size)
    return [(torch.randn(shape(5 if i == 0 else 1), generator=generator), torch.randn(shape(5 if i == 0 else 1), generator=generator))
            for i in range(count)]


def test_the_same_keys_and_values_as_dynamic_layer_with_one_buffer_per_room():
    growing, dynamic = GrowingLayer(), DynamicLayer()
    buffers = set()
    for keys, values in _steps(ROOM + 10):
        got, expected = growing.update(keys, values), dynamic.update(keys, values)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        buffers.add(growing.keys._base.data_ptr())
    assert growing.get_seq_length() == dynamic.get_seq_length() == 5 + ROOM + 9
    assert len(buffers) == 2  # the prefill's buffer, then one reallocation when its ROOM columns were used


def test_keys_replaced_from_outside_are_kept_and_grown():
    growing, dynamic = GrowingLayer(), DynamicLayer()
    steps = _steps(4)
    for keys, values in steps[:2]:
        growing.update(keys, values), dynamic.update(keys, values)
    rows = torch.tensor([2, 0, 0])  # row selection with a repeat, as shared-context scoring does
    for layer in (growing, dynamic):
        layer.batch_select_indices(rows)
    growing.keys = torch.nn.functional.pad(growing.keys, (0, 0, 1, 0))  # left padding, as joining rows does
    dynamic.keys = torch.nn.functional.pad(dynamic.keys, (0, 0, 1, 0))
    growing.values = torch.nn.functional.pad(growing.values, (0, 0, 1, 0))
    dynamic.values = torch.nn.functional.pad(dynamic.values, (0, 0, 1, 0))
    for keys, values in steps[2:]:
        got, expected = growing.update(keys, values), dynamic.update(keys, values)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_the_cache_argument_is_found_through_a_peft_wrapper():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    own = cache_argument(model)
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert cache_argument(wrapped) == cache_argument(wrapped.base_model) == own
    assert cache_argument(model.model) == own  # the body
