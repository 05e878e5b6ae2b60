"""The instance's clock: the real one, or a time a test fixes (a scripted history signed at the
times its script says, so figures computed from signed times can be computed by hand)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager

_FIXED: list[float] = []


def now() -> float:
    return _FIXED[-1] if _FIXED else time.time()


def utcnow() -> dt.datetime:
    return dt.datetime.fromtimestamp(now(), dt.timezone.utc)


@contextmanager
def fixed(epoch: float) -> Iterator[None]:
    """Certificates, log entries and timestamps made inside say `epoch`."""
    _FIXED.append(epoch)
    try:
        yield
    finally:
        _FIXED.pop()
