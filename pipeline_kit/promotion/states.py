"""What the gates that look beyond this release see, shown from signed evidence: the schema
each environment runs (migrations) and what each peer service runs (contracts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit.errors import PipelineKitError
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.ledger import Entry
from pipeline_kit.models import Release
from pipeline_kit.promotion.model import Project, history
from pipeline_kit.promotion.shown import running_release
from pipeline_kit.trust import Trust

if TYPE_CHECKING:
    from pipeline_kit.contracts import ContractState


def schema_states(
    project: Project, entries: Sequence[Entry]
) -> dict[str, tuple[str | None, frozenset[str] | None, str]]:
    """For every environment: the release it runs and the migration files that release's signed
    record has, or (files None) why that cannot be shown (see `running_release`): the release
    being promoted too counts only with its signed VSA there. Each release is verified once."""
    from pipeline_kit.migrations import load_record

    states: dict[str, tuple[str | None, frozenset[str] | None, str]] = {}
    verified: dict[str, tuple[EvidenceDir | None, str]] = {}  # environments often run one release
    for environment in project.config.environments:
        running = running_release(project, environment, entries, verified=verified)
        if running.evidence is None:
            states[environment] = (running.release, None, running.why)
        else:
            files = frozenset(item["path"] for item in load_record(running.evidence).get("files", []))
            states[environment] = (running.release, files, running.why)
    return states


def peer_project(project: Project, directory: Path) -> Project:
    """Another service's project (its config, evidence and ledger), judged by this promotion's
    identity policy; its source repository is its own, so none is expected of it."""
    from pipeline_kit.config import load_config
    from pipeline_kit.evidence import DEFAULT_DIR_NAME
    from pipeline_kit.ledger import open_ledger

    config = load_config(directory / "pipeline-kit.yml")
    trust = Trust(project.trust.policy, project.trust.load)
    return Project(
        config,
        EvidenceDir(directory / DEFAULT_DIR_NAME),
        directory,
        open_ledger(config.ledger, directory),
        trust,
        project.actor,
    )


def contract_state(project: Project, release: Release, environment: str, own: Sequence[Entry]) -> ContractState:
    """This release's contracts and signed verifications, and for each peer the release it runs
    in `environment` (shown from signed evidence), that release's contracts and verifications."""
    from pipeline_kit.contracts import ContractState, Peer, load_pacts, verified_pacts

    config, trust = project.config.contracts, project.trust
    assert config is not None and trust.policy is not None
    _, pacts = load_pacts(project.evidence)
    verified = verified_pacts(project.evidence, release, trust.policy, trust.load(), project.ledger, own)
    peers = []
    for name, directory in config.peers.items():
        try:
            peer = peer_project(project, project.workdir / directory)
            entries = history(peer.ledger)
            running = running_release(peer, environment, entries)
        except PipelineKitError as exc:
            peers.append(Peer(name, None, why=exc.message))
            continue
        if running.evidence is None:
            peers.append(Peer(name, None, why=running.why))
            continue
        their_name, their_pacts = load_pacts(running.evidence)
        if their_name not in (None, name):
            peers.append(Peer(name, None, why=f"{running.release}'s contracts name it {their_name!r}"))
            continue
        theirs = verified_pacts(
            peer.evidence, running.evidence.load_release(), trust.policy, trust.load(), peer.ledger, entries
        )
        peers.append(Peer(name, running.release, tuple(their_pacts), theirs))
    return ContractState(config.name, tuple(pacts), verified, tuple(peers))
