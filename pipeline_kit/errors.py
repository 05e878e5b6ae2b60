"""One error root for everything the kit reports to a user.

Every failure a user can cause or meet is a `PipelineKitError` subclass carrying a one-line
message, an optional hint (what to do next) and the process exit code the CLI returns:

    0  success
    1  denied, or verification failed (evidence does not check out)
    2  usage or configuration error (bad flags, malformed config or input files)
    3  environment or backend failure (a build command failed, a tool or service is missing)

The library raises these; only the CLI prints them. Third-party exceptions are wrapped at the
boundary with ``raise ... from exc`` so the cause stays available under ``--verbose``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path  # not at run time: `pipeline-kit --help` loads this module

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class PipelineKitError(Exception):
    """Base of every error the kit reports to a user."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """What happened (one line) and, when known, what to do about it."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class UsageError(PipelineKitError):
    """Bad flags or arguments."""

    exit_code = EXIT_USAGE


class InputError(UsageError):
    """A file the user gave us (config, lockfile, checksum file) is malformed.

    The message always starts with the file, then the field or line, then what was expected.
    """

    def __init__(self, path: Path | str, where: str | None, problem: str, *, hint: str | None = None) -> None:
        location = f"{path}: {where}" if where else str(path)
        super().__init__(f"{location}: {problem}", hint=hint)
        self.path = str(path)
        self.where = where


class ConfigError(InputError):
    """pipeline-kit.yml is missing, malformed or invalid."""


class VerificationError(PipelineKitError):
    """Evidence does not check out: a digest, signature, identity or subject mismatch."""

    exit_code = EXIT_DENIED


class Stopped(PipelineKitError):
    """An operator stopped what this run was doing (a rollout aborted while its job ran)."""

    exit_code = EXIT_DENIED


class EnvironmentFailure(PipelineKitError):
    """Something outside the kit failed: a build command, a tool, a service."""

    exit_code = EXIT_ENVIRONMENT


class BuildFailed(EnvironmentFailure):
    """The build command exited non-zero."""


def first_line(exc: BaseException) -> str:
    """A third-party exception as quoted in our one-line errors: its first line, or its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
