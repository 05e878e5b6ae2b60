"""Whom to trust: the identity policy, and which Sigstore instance (public-good by default, any
other through a client trust config: `--trust-config`, a private instance or the test instance)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_kit.errors import EnvironmentFailure, InputError, UsageError

if TYPE_CHECKING:
    from pipeline_kit.identity import IdentityPolicy


@dataclass(frozen=True)
class Trust:
    """Who must have signed the evidence, and which Sigstore instance to trust (loaded lazily)."""

    policy: IdentityPolicy | None
    load: Callable[[], Any]
    repository: str | None = None
    ref: str | None = None
    unverified: str | None = None  # set to skip verification, saying why (the gates deny on it)
    projected: bool = False  # a dry run: judge the unsigned evidence as CI will once it signs


class TrustRootUnavailable(EnvironmentFailure):
    """The trust root cannot be loaded: nothing can be verified, so no gate is worth running."""


def load_trust_config(path: Path | None, *, rekor_version: int | None = None, offline: bool = False) -> Any:
    """A sigstore `ClientTrustConfig`; imports sigstore."""
    from pydantic import ValidationError
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    if rekor_version not in (None, 1, 2):
        raise UsageError(f"--rekor-version must be 1 or 2, got {rekor_version}")
    if path is None:
        import logging

        # --offline was asked for: sigstore's warning that it is offline says nothing new
        logging.getLogger("sigstore._internal.tuf").setLevel(logging.ERROR if offline else logging.WARNING)
        try:
            config = ClientTrustConfig.production(offline=offline)
        except (SigstoreError, OSError) as exc:
            raise TrustRootUnavailable(
                f"cannot load the public-good Sigstore trust root: {exc}",
                hint="offline or behind a proxy? --offline uses the root cached by an earlier run; "
                "--trust-config FILE names a private instance's",
            ) from exc
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the trust config: {exc.strerror}") from exc
        try:
            config = ClientTrustConfig.from_json(text)
        except (ValidationError, ValueError, SigstoreError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, None, f"not a Sigstore client trust config: {first}") from exc
    if rekor_version is not None:
        config.force_tlog_version = rekor_version
    return config
