"""Drift: what an environment runs against what signed evidence says it should (docs/drift.md).

- `probe`: asking the environment (`probe:` command or URL), bounded in time and output.
- `checking`: the expected release from the signed timeline, each answer judged, the outcome
  recorded in the ledger (kind `drift`).
- `reconciling`: the signed release put back through a normal promotion, as a reconcile.
"""

from pipeline_kit.drift.checking import Expected, Finding, Report, check, expected_release, judge
from pipeline_kit.drift.probe import Answer, Asking, ask
from pipeline_kit.drift.reconciling import reconcile

__all__ = [
    "Answer",
    "Asking",
    "Expected",
    "Finding",
    "Report",
    "ask",
    "check",
    "expected_release",
    "judge",
    "reconcile",
]
