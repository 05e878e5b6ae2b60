"""Whom to trust: the identity policy, and which Sigstore instance (public-good by default, any
other through a client trust config: `--trust-config`, a private instance or the test instance)."""

from __future__ import annotations

import threading
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


# Each trust config is loaded once a process, by where it comes from (a file's bytes, or the
# public-good root) and the log version asked for: a release plan resolves each step's trust, the
# public-good root is a TUF refresh over the network, and signers are kept by trust config
# (signing.py). A config that fails to load is not kept: the next load says why again.
_LOADED: dict[tuple[object, ...], Any] = {}
_LOADED_LOCK = threading.Lock()


def load_trust_config(path: Path | None, *, rekor_version: int | None = None, offline: bool = False) -> Any:
    """A sigstore `ClientTrustConfig`, loaded once a process (see _LOADED); imports sigstore."""
    if rekor_version not in (None, 1, 2):
        raise UsageError(f"--rekor-version must be 1 or 2, got {rekor_version}")
    text = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the trust config: {exc.strerror}") from exc
    key = ("public-good", offline, rekor_version) if text is None else ("file", text, rekor_version)
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(path, text, rekor_version=rekor_version, offline=offline)
        return _LOADED[key]


def _load(path: Path | None, text: str | None, *, rekor_version: int | None, offline: bool) -> Any:
    from pydantic import ValidationError
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    if path is None or text is None:
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
            config = ClientTrustConfig.from_json(text)
        except (ValidationError, ValueError, SigstoreError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, None, f"not a Sigstore client trust config: {first}") from exc
    if rekor_version is not None:
        config.force_tlog_version = rekor_version
    return config
