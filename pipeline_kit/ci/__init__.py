"""CI platforms: detect where the kit runs and describe the run the same way everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline_kit.ci.github import GitHubActions
from pipeline_kit.ci.gitlab import GitLabCI
from pipeline_kit.ci.interface import CIContext, CIPlatform, Reporter, SignerIdentity
from pipeline_kit.ci.local import Local

__all__ = ["CIContext", "CIPlatform", "Reporter", "SignerIdentity", "detect", "reporter"]

# Checked in order; Local always matches, so it comes last.
PLATFORMS: tuple[type[CIPlatform], ...] = (GitHubActions, GitLabCI, Local)


def detect(env: Mapping[str, str], workdir: Path) -> CIContext:
    """The context of the current run: GitHub Actions, GitLab CI, or a local machine."""
    platform = next(p for p in PLATFORMS if p.detects(env))
    return platform().context(env, workdir)


def reporter(env: Mapping[str, str], workdir: Path) -> Reporter:
    """Where outputs, summaries and annotations go on the platform this runs on."""
    platform = next(p for p in PLATFORMS if p.detects(env))
    return platform().reporter(env, workdir)
