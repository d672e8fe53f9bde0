"""``unlearn-bench demo``: the whole unlearning story, offline, in one command (docs/demo.md).

synthetic TOFU-format data → a tiny Llama and tokenizer built on it → fine-tuned target (``full``)
and retain (``retain90``) models → each unlearning method on ``forget10``, plain and controlled
(model mixing calibrated to τ × the target's retain ES) → every checkpoint scored by the
``unlearn_*`` tasks through lm-eval in this process, each model loaded once (retain model first:
its run is the reference for forget quality and privleak) → the robustness study → ``leaderboard.md``/
``.csv``/``.html`` and plots. ``--model``/``--data`` run the same pipeline on a real base model and the
real TOFU.

Modules, each importing only those before it:

- :mod:`~harness_ext.demo.synth` (the synthetic benchmark) and :mod:`~harness_ext.demo.tiny_model`
  (the tiny Llama and its tokenizer): standalone, also used by tests and benchmarks;
- :mod:`~harness_ext.demo.presets`: the constants and :class:`~harness_ext.demo.presets.DemoConfig`;
- :mod:`~harness_ext.demo.steps`: resumable, stamped steps;
- :mod:`~harness_ext.demo.robustness` and :mod:`~harness_ext.demo.scoring`: the robustness study, the
  evaluations and the leaderboard;
- :mod:`~harness_ext.demo.phases`: the pipeline (data, base model, fine-tuning, unlearning, then those);
- :mod:`~harness_ext.demo.run`: the environment, the pipeline and its timings;
- :mod:`~harness_ext.demo.command`: the ``unlearn-bench demo`` options.
"""
