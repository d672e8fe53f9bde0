"""Model attacks: turn a checkpoint into an attacked model (relearning, quantisation).

Input attacks live with the tasks (``unlearn_tasks.attacks``); probing an intermediate layer is the
lm-eval model ``unlearn_probe`` (``harness_ext.models.probe``). See docs/robustness.md.
"""
