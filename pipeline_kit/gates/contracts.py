"""contracts: can-i-deploy from signed evidence, without a broker. Every contract between this
release and the releases its peers (`contracts.peers`) run in the environment is verified by
the provider side: this release's Pact files by each peer's running release, each peer's Pact
files naming this service by this release. A verification counts only signed by the identity
policy, about exactly the provider release's subjects, naming the pact by its digest, with the
result passed; what a peer runs is shown from its signed evidence (its ledger only names the candidate), and
a peer whose running release cannot be shown, an empty ledger included, denies.
This release's contracts count only as the record the provenance signed (`contracts.json`).
"""

from __future__ import annotations

from pipeline_kit.evidence import CONTRACTS_FILE
from pipeline_kit.gates.interface import Gate, Outcome, PromotionContext, deferred, denied, error, passed


class ContractsGate(Gate):
    name = "contracts"

    def evaluate(self, context: PromotionContext) -> Outcome:
        from pipeline_kit.contracts import unmet

        if context.config.contracts is None:
            return passed("no contracts configured")
        if context.projected:
            return deferred("verifies every contract with the services in this environment from signed evidence")
        if context.verification is None:
            return error(f"evidence not verified: {context.verification_problem}")
        checks = context.checks_for(CONTRACTS_FILE)
        if not checks:
            return error("no signed contracts record: run `pipeline-kit provenance` with contracts: configured")
        if not all(check.ok for check in checks):
            return denied(f"{CONTRACTS_FILE}: {next(c.detail for c in checks if not c.ok)}")
        if context.contracts is None:
            return error("the contracts with the other services were not looked up")
        problems, checked = unmet(context.contracts, context.environment)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return denied(problems[0] + more, unmet=problems)
        peers = ", ".join(f"{peer.name} {peer.release}" for peer in context.contracts.peers) or "no peer"
        return passed(f"{checked} contract(s) with {peers} verified by the provider side")
