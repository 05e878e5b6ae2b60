"""Reconciling: a drift repaired by putting the signed release back through a normal promotion
(its gates judged again, its deploy, its analysis or rollout, its signed VSA and records), a
promotion recorded as a reconcile (ledger kind `reconciled`, VSA level PIPELINE_KIT_RECONCILED).
Nothing is copied into the environment: the deploy command fetches the release by its digests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit._internal.fs import reached_through_symlink
from pipeline_kit.digest import hash_file
from pipeline_kit.drift.checking import Report
from pipeline_kit.errors import PipelineKitError, UsageError
from pipeline_kit.evidence import PROMOTIONS_DIR, EvidenceDir
from pipeline_kit.promotion.arriving import Promotion, promote
from pipeline_kit.promotion.model import Project, TokenProvider

if TYPE_CHECKING:
    from pipeline_kit.analysis import Result


def reconcile(
    project: Project,
    report: Report,
    *,
    deploy: str | Sequence[str] | None,
    token: TokenProvider,
    on_output: Callable[[str], None] | None = None,
    on_progress: Callable[[int, Result], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Promotion:
    """Promote the release `report` expects to its environment again, as a reconcile. Only a
    drift is reconciled: an unknown (a probe that did not answer) is not known to be wrong."""
    if report.state != "drift" or report.expected is None:
        raise UsageError(f"{report.environment} is {report.state}: only a drift is reconciled")
    expected, environment = report.expected, report.environment
    seen = f" (ledger seq {report.entry.seq})" if report.entry is not None else ""
    reason = f"reconcile: {report.summary()}{seen}"[:1000]

    def again(where: Project) -> Promotion:
        return promote(
            where,
            environment,
            reason=reason,
            break_glass=False,
            deploy=deploy,
            token=token,
            on_output=on_output,
            on_progress=on_progress,
            on_step=on_step,
            purpose="reconcile",
        )

    if expected.evidence.root == project.evidence.root:  # the release at the top of the evidence dir
        return again(project)
    _refuse_another_build_here(project.workdir, expected.subjects)
    with tempfile.TemporaryDirectory(prefix="pipeline-kit-reconcile-") as scratch:
        working = EvidenceDir(Path(scratch) / "evidence")
        _copy(expected.evidence.root, working.root)
        # the subjects' files in the working directory are another build's: checked by digest
        result = again(replace(project, evidence=working, files_here=False))
        _keep_records(project, working, expected.release)
    return result


def _copy(source: Path, target: Path) -> None:
    """The verified evidence (an archive, or restored from the ledger) as the promotion's own
    evidence dir: its regular files, none reached through a link. It was verified where it lies,
    and the promotion verifies the copy again."""
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.is_symlink() and not reached_through_symlink(path, source):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def _keep_records(project: Project, working: EvidenceDir, release: str) -> None:
    """The reconcile's decision and VSA, kept in the release's archive of the project's evidence
    dir (the ledger holds them too: a failure to keep them here loses nothing)."""
    records = working.path(PROMOTIONS_DIR)
    for path in sorted(records.glob("*")) if records.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            try:
                project.evidence.keep(release, f"{PROMOTIONS_DIR}/{path.name}", path.read_bytes())
            except (PipelineKitError, OSError):
                return


def _refuse_another_build_here(workdir: Path, subjects: frozenset[tuple[str, str]]) -> None:
    """A deploy that reads the subjects' files from the working directory would deploy what lies
    there under the reconcile's signed VSA: a file by a subject's name must be that subject."""
    for name, sha256 in sorted(subjects):
        path = workdir / name
        found = hash_file(path).sha256 if path.is_file() else sha256
        if found != sha256:
            raise UsageError(
                f"{name} here is another build (sha256 {found[:12]}..., the signed release's "
                f"is {sha256[:12]}...): a deploy reading it would put that build in place of the signed one",
                hint="reconcile where the subjects' files are absent or the signed ones (a fresh checkout), "
                "with a deploy that fetches by $PIPELINE_KIT_DIGEST",
            )
