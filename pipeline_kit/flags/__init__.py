"""Kill switches, from `flags:` in the config: one module per backend (flagd file, Unleash)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline_kit.config import Config
from pipeline_kit.errors import EnvironmentFailure, UsageError
from pipeline_kit.flags.flagd import FlagdFile
from pipeline_kit.flags.interface import KillSwitches
from pipeline_kit.flags.unleash import Unleash

__all__ = ["KillSwitches", "open_switches"]


def open_switches(config: Config, workdir: Path, env: Mapping[str, str]) -> KillSwitches:
    flags = config.flags
    if flags is None:
        raise UsageError("no flags: section in the config (where the kill switches live)")
    if flags.type == "flagd":
        return FlagdFile(workdir / str(flags.path))
    token = env.get(flags.token_variable)
    if not token:
        raise EnvironmentFailure(f"flags.token-variable: the variable {flags.token_variable} is not set")
    return Unleash(str(flags.url), flags.project, token, dict(flags.environments))
