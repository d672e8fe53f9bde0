"""The metric-robustness study (``unlearn-bench robustness``): which metric can a user trust?

Each model of a family is scored clean and under attacks; a metric is robust when its value after an
attack follows its value before (Wang et al., ICLR 2025). See docs/robustness.md.
"""

from harness_ext.robustness.attacks import ATTACKS, DEFAULT_ATTACKS, AttackSettings
from harness_ext.robustness.family import FamilyError, Member, build_family
from harness_ext.robustness.scoring import METRICS, ScoringSettings
from harness_ext.robustness.study import StudyConfig, run_study

__all__ = ["ATTACKS", "DEFAULT_ATTACKS", "METRICS", "AttackSettings", "FamilyError", "Member", "ScoringSettings",
           "StudyConfig", "build_family", "run_study"]
