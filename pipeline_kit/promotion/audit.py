"""The ledger audit: the chain verified, and every way the ledger contradicts a signed decision."""

from __future__ import annotations

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import UsageError
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.ledger import GENESIS, Entry, Ledger
from pipeline_kit.promotion.model import history
from pipeline_kit.trust import Trust
from pipeline_kit.vsa import Candidate, distinct, read_bundles


def audit(ledger: Ledger, evidence: EvidenceDir, trust: Trust) -> tuple[list[Entry], list[str]]:
    """The ledger's entries (chain verified), and every way it contradicts a signed decision.

    Each VSA commits to the ledger head it was decided on, and each promotion's entry names its
    VSA. So a ledger truncated, rewritten or missing an entry up to the last signed decision no
    longer matches a VSA kept elsewhere (the ledger's attachments, the evidence dir and its
    archives). After the last signed decision, an unkeyed chain cannot tell.
    """
    from pipeline_kit.verifier import verifier_for
    from pipeline_kit.vsa import signed_statement

    if trust.policy is None:
        raise UsageError("no identity policy to verify the ledger's signed decisions with")
    entries = history(ledger)
    verifier = verifier_for(trust.load())
    referenced = {e.details["vsa"]: e for e in entries if isinstance(e.details.get("vsa"), str)}
    found: dict[str, Candidate] = {}
    for digest, entry in referenced.items():
        data = ledger.attachment(digest)
        if data is not None:
            found[digest] = Candidate(f"ledger seq {entry.seq}'s VSA", data)
    root = evidence.root
    seen = {distinct(candidate) for candidate in found.values()}
    for candidate in read_bundles(
        [*root.glob("promotions/*.vsa.sigstore.json"), *root.glob("releases/*/promotions/*.vsa.sigstore.json")]
    ):
        if distinct(candidate) not in seen:  # a copy with other whitespace is the same decision
            seen.add(distinct(candidate))
            found.setdefault(sha256_bytes(candidate.data), candidate)
    problems = [
        f"ledger seq {entry.seq}: its VSA ({digest[:12]}) is in neither the ledger nor the evidence dir"
        for digest, entry in referenced.items()
        if digest not in found
    ]
    hashes = [GENESIS, *(e.hash for e in entries)]
    for digest, candidate in found.items():
        signed = signed_statement(candidate, trust.policy, verifier)
        if isinstance(signed, str):
            if digest in referenced:  # a stray unverifiable file is not the ledger's; a referenced one is
                problems.append(f"{candidate.where}: {signed}")
            continue
        decided = signed.ledger_head
        if decided is None:
            continue  # decided before VSAs named the ledger head
        seq, head_hash = decided
        if seq >= len(hashes):
            problems.append(
                f"{candidate.where}: decided on ledger seq {seq}, but the ledger has {len(entries)} entries: truncated"
            )
        elif hashes[seq] != head_hash:
            problems.append(f"{candidate.where}: ledger seq {seq} is not the entry it was decided on: rewritten")
        elif digest not in referenced:
            problems.append(f"{candidate.where}: the ledger has no entry for this signed decision: dropped")
    return entries, problems
