"""The KV caches ``unlearn_hf`` builds: transformers' :class:`DynamicCache`, with room to grow in place.

transformers' :class:`DynamicLayer` concatenates each step's keys and values to the whole cache, so a
decoding step copies the cache of every layer (SmolLM2-135M, 32 rows × 290 tokens: 0.4 GB a step).
:class:`GrowingLayer` keeps them in a buffer with spare columns and writes each step in place; what
attention sees is the same tensor values (a view of the filled columns), so outputs are identical.
"""

from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

#: spare columns a layer's buffer gets whenever it is (re)allocated
ROOM = 64


def cache_argument(module) -> str:
    """The forward argument that takes the KV cache: ``cache`` in newer transformers (5.24), ``past_key_values``
    before (5.19). Wrappers whose forward takes ``**kwargs`` (PEFT) are looked through to the model they wrap."""
    for _ in range(4):
        parameters = inspect.signature(module.forward).parameters
        if "cache" in parameters or "past_key_values" in parameters:
            return "cache" if "cache" in parameters else "past_key_values"
        inner = module.get_base_model() if hasattr(module, "get_base_model") else getattr(module, "model", None)
        if not isinstance(inner, torch.nn.Module) or inner is module:
            break
        module = inner
    return "past_key_values"


class GrowingLayer(DynamicLayer):
    """A :class:`DynamicLayer` whose ``keys``/``values`` are views of buffers with :data:`ROOM` spare
    columns: ``update`` writes into them, and copies only when they are full or when ``keys``/``values``
    were replaced from outside (row selection, padding, concatenation)."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self._has_room(key_states.shape[-2]):
            empty = not self.is_initialized or self.keys is None or self.keys.numel() == 0
            self.is_initialized, self.device = True, key_states.device
            self._hold(key_states if empty else torch.cat([self.keys, key_states], dim=-2),
                       value_states if empty else torch.cat([self.values, value_states], dim=-2))
            return self.keys, self.values
        filled, end = self.keys.shape[-2], self.keys.shape[-2] + key_states.shape[-2]
        self._key_buffer[..., filled:end, :] = key_states
        self._value_buffer[..., filled:end, :] = value_states
        self.keys, self.values = self._key_buffer[..., :end, :], self._value_buffer[..., :end, :]
        return self.keys, self.values

    def _has_room(self, added: int) -> bool:
        buffer = getattr(self, "_key_buffer", None)
        return (self.is_initialized and buffer is not None and self.keys is not None and self.keys._base is buffer
                and self.values._base is self._value_buffer and self.keys.shape[-2] + added <= buffer.shape[-2])

    def _hold(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self._key_buffer = keys.new_empty(*keys.shape[:-2], keys.shape[-2] + ROOM, keys.shape[-1])
        self._value_buffer = values.new_empty(self._key_buffer.shape)
        self._key_buffer[..., : keys.shape[-2], :] = keys
        self._value_buffer[..., : values.shape[-2], :] = values
        self.keys, self.values = self._key_buffer[..., : keys.shape[-2], :], self._value_buffer[..., : values.shape[-2], :]


def new_cache(model) -> DynamicCache:
    """``DynamicCache(config=model.config)`` with its plain layers growing in place (sliding-window and
    other layer kinds as transformers makes them)."""
    cache = DynamicCache(config=model.config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def plain_layers(cache: DynamicCache) -> bool:
    """Whether every layer holds all its keys/values as one tensor per layer (rows can be selected,
    repeated, padded and concatenated): transformers' plain :class:`DynamicLayer` or a :class:`GrowingLayer`."""
    return all(type(layer) in (DynamicLayer, GrowingLayer) for layer in cache.layers)
