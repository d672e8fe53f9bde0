"""Leaderboards of unlearning runs: reading runs (lm-eval, open-unlearning), the table, Markdown/CSV/HTML, plots.

Modules: ``runs`` (reading results files), ``checks`` (what may be compared), ``columns`` (what each column
reads and means), ``table`` (rows and order), ``markdown``, ``html``, ``plots``, ``open_unlearning``
(importing its result files), ``build`` (the whole pipeline and the CLI).
"""

from harness_ext.leaderboard.build import add_arguments, build_leaderboard, run
from harness_ext.leaderboard.runs import LeaderboardError

__all__ = ["LeaderboardError", "add_arguments", "build_leaderboard", "run"]
