"""The one Sigstore verifier the kit reads signatures with, over a trust root.

Imported only where a signature is verified: it loads the Sigstore client. A signed statement's
time is the latest time its verification established (a TSA's signed timestamp, a log's
integrated time); sigstore's `verify_dsse` establishes those times but returns only the payload,
so this verifier keeps them for the caller instead of establishing them a second time.
"""

from __future__ import annotations

import threading
from typing import Any

from sigstore.errors import VerificationError
from sigstore.models import Bundle
from sigstore.verify import Verifier
from sigstore.verify.policy import VerificationPolicy


class TimedVerifier(Verifier):
    # Per thread: one verifier serves the threads that verify a release's subjects at once.
    _times = threading.local()

    def _establish_time(self, bundle: Bundle) -> Any:
        times = super()._establish_time(bundle)
        self._times.seen = (bundle, times)
        return times

    def verify_dsse_at(self, bundle: Bundle, policy: VerificationPolicy) -> tuple[bytes, list[Any]]:
        """The verified DSSE payload of `bundle` and the times its verification established.
        Verification that established no time for this bundle (a sigstore that no longer passes
        through `_establish_time`) raises: a statement without a verified time counts for nothing."""
        self._times.seen = None
        _, payload = self.verify_dsse(bundle, policy)
        seen = self._times.seen
        if seen is None or seen[0] is not bundle:
            raise VerificationError("the verification established no signing time")
        return payload, list(seen[1])


def verifier_for(trust_config: Any) -> TimedVerifier:
    """A verifier over `trust_config`'s trusted root (a sigstore ClientTrustConfig)."""
    return TimedVerifier(trusted_root=trust_config.trusted_root)
