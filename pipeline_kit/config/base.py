"""What every part of `pipeline-kit.yml` is made of: the strict model with kebab-case keys,
variable names, durations and paths inside the project."""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from pipeline_kit.oidc import SIGNING_CREDENTIALS


class ConfigModel(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=lambda name: name.replace("_", "-"),
        populate_by_name=True,
        defer_build=True,  # built on first use: a command pays only for the sections it reads
    )


# Variables a child process may additionally see (`pass-env`): names only, never values here.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)]


def _not_signing_power(name: str) -> str:
    if name in SIGNING_CREDENTIALS:
        raise ValueError(f"{name} carries signing power: the kit never sends it anywhere")
    return name


# A variable whose value the kit sends to a server (a header, a bearer token): never one that signs.
SentVariable = Annotated[EnvName, AfterValidator(_not_signing_power)]

_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def sent_safely(url: str | None, secret: str | None) -> None:
    """Refuse sending the secret in `secret` (a variable's name) to `url` in the clear: plain
    http only to this machine, where nothing between can read it."""
    if url is None or secret is None or not url.lower().startswith("http://"):
        return
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError as exc:  # an unclosed IPv6 address, say
        raise ValueError(f"{url}: not a URL ({exc})") from None
    if host not in _LOOPBACK:
        raise ValueError(f"{url}: would send {secret} in the clear; use https (plain http only to localhost)")


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `1h30m`, `2d`: a positive duration."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"expected a duration like 30m, 1h or 2d12h, got {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {text[:40]!r} is too long") from None
    if duration > MAX_DURATION:
        raise ValueError(f"duration {text[:40]!r} is longer than {MAX_DURATION.days} days")
    return duration


MAX_DURATION = timedelta(days=3660)  # ten years: anything longer is a typo


def inside_project(paths: list[str]) -> list[str]:
    for path in paths:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"{path}: a path inside the project")
    return paths
