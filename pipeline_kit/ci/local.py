"""A run on a developer machine: described from git, clearly marked as local and unsigned."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline_kit import __version__
from pipeline_kit._internal.proc import git
from pipeline_kit._internal.redact import repository_web_uri
from pipeline_kit.ci.interface import CIContext, CIPlatform

LOCAL_BUILDER_ID = "https://github.com/pipeline-kit/pipeline-kit/blob/main/docs/buildtype.md#local"


class Local(CIPlatform):
    name = "local"

    @staticmethod
    def detects(env: Mapping[str, str]) -> bool:
        return True

    def context(self, env: Mapping[str, str], workdir: Path) -> CIContext:
        remote = git(workdir, "remote", "get-url", "origin")
        commit = git(workdir, "rev-parse", "--verify", "-q", "HEAD")
        ref = git(workdir, "symbolic-ref", "-q", "HEAD")
        dirty = bool(git(workdir, "status", "--porcelain", "--untracked-files=no"))
        notes = ["local build: not produced by CI (the provenance names the local builder)"]
        if commit is None:
            notes.append("not a git checkout: the source commit is unknown")
        elif dirty:
            notes.append("the work tree has uncommitted changes: the commit does not describe it")
        return CIContext(
            platform="local",
            repository=repository_web_uri(remote) if remote else None,
            commit=commit,
            ref=ref,
            actor=None,
            builder_id=LOCAL_BUILDER_ID,
            invocation_uri=None,
            started_on=None,
            builder_version={"pipeline-kit": __version__},
            external_parameters={"source": repository_web_uri(remote)} if remote else {},
            internal_parameters={"local": {"unsigned": True, "dirty": dirty}},
            signer=None,
            notes=tuple(notes),
        )
