"""Build once: run the build, find its outputs, hash them, write release.json and SHA256SUMS.

Subjects can also come from elsewhere: checksum files written by other jobs (matrix builds)
are merged into one release, so one signature and one provenance cover every job's outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pipeline_kit import __version__
from pipeline_kit._internal.fs import reached_through_symlink, relative_inside
from pipeline_kit._internal.proc import child_environment, git, run_streaming
from pipeline_kit.ci import CIContext
from pipeline_kit.digest import check_subject_name, hash_file, hash_files, output_glob_problem, parse_checksums
from pipeline_kit.errors import (
    BuildFailed,
    EnvironmentFailure,
    InputError,
    UsageError,
    VerificationError,
)
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.models import Build, Release, Source, Subject, label_problem, release_id


@dataclass(frozen=True)
class BuildRequest:
    workdir: Path
    name: str
    version: str | None = None
    # A string runs through the shell, a sequence as-is; None: nothing to run.
    command: str | Sequence[str] | None = None
    outputs: Sequence[str] = ()
    subject_files: Sequence[Path] = ()
    pass_env: Sequence[str] = ()  # variables the build may see besides the scrubbed environment
    secrets: frozenset[str] = frozenset()  # variables it never sees (`Config.secret_variables`)
    on_output: Callable[[str], None] | None = field(default=None, compare=False)


def build(request: BuildRequest, evidence: EvidenceDir, ci: CIContext) -> Release:
    """Run the build (if any), collect subjects and write the release; returns it."""
    for what, value in (("name", request.name), ("version", request.version)):
        problem = label_problem(value) if value is not None else None
        if value is not None and problem:
            raise UsageError(f"release {what} {value[:40]!r}: {problem}")
    if not request.outputs and not request.subject_files:
        raise UsageError(
            "nothing to release: no output globs and no --subjects checksum files",
            hint="set artifact.outputs in pipeline-kit.yml or pass --output GLOB",
        )
    started = ci.started_on or _now()
    if request.command:
        _run_command(request)
    subjects = _merge(
        _collect_outputs(request, evidence),
        *(_read_fragment(path, request.workdir) for path in request.subject_files),
    )
    release = Release(
        id=release_id(subjects),
        name=request.name,
        version=request.version,
        subjects=subjects,
        source=Source(repository=ci.repository, commit=ci.commit, ref=ci.ref),
        build=Build(
            platform=ci.platform,
            builder_id=ci.builder_id,
            invocation_uri=ci.invocation_uri,
            command=_command_tuple(request.command),
            started_on=started,
            finished_on=_now(),
        ),
        kit_version=__version__,
    )
    return evidence.start_release(release)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _command_tuple(command: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if command is None:
        return None
    return ("/bin/sh", "-c", command) if isinstance(command, str) else tuple(command)


def build_environment(
    workdir: Path, pass_env: Sequence[str] = (), secrets: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The build's environment: scrubbed of secrets (`child_environment`), with SOURCE_DATE_EPOCH
    from the last commit unless already set, so toolchains that honour it (wheel builders, many
    others) produce the same bytes every time."""
    import os

    env = child_environment(os.environ, pass_env, secrets)
    if "SOURCE_DATE_EPOCH" not in env:
        committed = git(workdir, "log", "-1", "--format=%ct")
        if committed and committed.isdigit():
            env["SOURCE_DATE_EPOCH"] = committed
    return env


def _run_command(request: BuildRequest) -> None:
    assert request.command
    shown = request.command if isinstance(request.command, str) else " ".join(request.command)
    try:
        env = build_environment(request.workdir, request.pass_env, request.secrets)
        result = run_streaming(request.command, cwd=request.workdir, env=env, on_line=request.on_output)
    except OSError as exc:
        raise EnvironmentFailure(f"build command could not start: {shown}: {exc.strerror}") from exc
    if result.returncode != 0:
        # output already streamed is not printed a second time
        tail = (
            "see its output above"
            if request.on_output
            else f"last lines of its output:\n{result.tail or '(no output)'}"
        )
        raise BuildFailed(f"build command exited with code {result.returncode}: {shown}", hint=tail)


def _collect_outputs(request: BuildRequest, evidence: EvidenceDir) -> tuple[Subject, ...]:
    workdir = request.workdir
    found: dict[str, Path] = {}
    for pattern in request.outputs:
        problem = output_glob_problem(pattern)
        if problem:
            raise UsageError(f"output glob {pattern[:80]!r} {problem}")
        matched = 0
        for path in sorted(workdir.glob(pattern)):
            if reached_through_symlink(path, workdir):
                raise UsageError(f"output {path} is reached through a symbolic link; refusing it")
            if not path.is_file():
                continue
            relative = relative_inside(path, workdir)
            if relative is None:
                raise UsageError(f"output {path} lies outside the working directory {workdir}")
            if relative_inside(path, evidence.root) is not None:
                continue
            matched += 1
            problem = check_subject_name(relative.as_posix())
            if problem:
                raise UsageError(f"output {relative.as_posix()[:80]!r}: subject name {problem}")
            found.setdefault(relative.as_posix(), path)
        if matched == 0:
            raise UsageError(
                f"output glob {pattern!r} matched no file under {workdir}",
                hint="check artifact.outputs and that the build command produced them",
            )
    names = sorted(found)
    digests = hash_files([found[name] for name in names])
    return tuple(
        Subject(name=name, digest={"sha256": d.sha256}, size=d.size) for name, d in zip(names, digests, strict=True)
    )


def _read_fragment(path: Path, workdir: Path) -> tuple[Subject, ...]:
    """Subjects from another job's checksum file; files present here must match it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: checksum file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read as a UTF-8 checksum file: {exc}") from exc
    subjects = []
    for line in parse_checksums(text, path):
        local = workdir / line.name
        size = None
        if local.is_file() and not reached_through_symlink(local, workdir):
            actual = hash_file(local)
            if actual.sha256 != line.sha256:
                raise VerificationError(
                    f"{path}: {line.name}: the file here has sha256 {actual.sha256}, "
                    f"the checksum file says {line.sha256}"
                )
            size = actual.size
        subjects.append(Subject(name=line.name, digest={"sha256": line.sha256}, size=size))
    return tuple(subjects)


def _merge(*groups: tuple[Subject, ...]) -> tuple[Subject, ...]:
    merged: dict[str, Subject] = {}
    for group in groups:
        for subject in group:
            known = merged.get(subject.name)
            if known is None or (known.size is None and known.sha256 == subject.sha256):
                merged[subject.name] = subject
            elif known.sha256 != subject.sha256:
                raise UsageError(
                    f"duplicate subject name {subject.name!r} with different digests "
                    f"({known.sha256[:12]}... and {subject.sha256[:12]}...)",
                    hint="give each job's outputs distinct names (e.g. include the platform)",
                )
    if not merged:
        raise UsageError("no subjects: no output matched and the checksum files list none")
    return tuple(merged[name] for name in sorted(merged))
