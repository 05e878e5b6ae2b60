"""Stop the line: one signed switch that every project of an org obeys (docs/stop-the-line.md).

`org.ledger` names a ref of a git repository (the git ledger backend): each entry there carries
one signed statement, a stop or a resume, as its attachment. What the line's state is comes from
the verified statements alone, never from a ledger line (its kind, actor or time can be edited):

- a stop counts when its signer satisfies `org.stop.identity`, a resume when `org.resume.identity`;
- a resume names, by digest, the stops it lifts (every stop standing when it was signed): a stop
  stands until a verified resume names it. So replaying an old resume after a newer stop lifts
  nothing (it names the old stop only), and no time field decides anything: the hash chain does;
- each statement names the org ledger head it was signed on; an entry that does not verify (no
  statement, a forged or unsigned one, a signer outside the policy) denies like a stop, until a
  verified statement signed on a head at or after it settles it;
- an org ledger that cannot be read (unreachable, its chain broken) denies: unknown is not running.

Who stopped it and when are the certificate's verified identity and the transparency log's (or the
TSA's) verified time.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline_kit.config import LedgerConfig, OrgConfig
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import EnvironmentFailure, PipelineKitError, Stopped, UsageError, VerificationError
from pipeline_kit.identity import IdentityPolicy
from pipeline_kit.ledger import GENESIS, Draft, Entry, Ledger, head, open_ledger
from pipeline_kit.vsa import Accepted, Candidate, claimed_statement, signed_statement

if TYPE_CHECKING:
    from pipeline_kit.trust import Trust

PREDICATE = "https://github.com/pipeline-kit/pipeline-kit/stop-the-line/v1"
Action = Literal["stop", "resume"]
KINDS: dict[Action, Literal["line-stopped", "line-resumed"]] = {"stop": "line-stopped", "resume": "line-resumed"}
ORG_ENVIRONMENT = "*"  # an org ledger entry is about every environment of every project
MAX_SHOWN = 3


@dataclass(frozen=True)
class Statement:
    """A verified stop or resume, as its signature shows it."""

    id: str  # sha256 of the signed statement: what a resume names
    action: Action
    signer: str  # the certificate's identity and issuer, verified
    signed_at: datetime  # the transparency log's or the TSA's verified time
    reason: str
    lifts: frozenset[str]
    signed_on: tuple[int, str]  # (seq, hash) of the org ledger head it was signed on
    seq: int  # the org ledger entry carrying it

    def describe(self) -> str:
        said = f"{self.signer} at {self.signed_at:%Y-%m-%d %H:%M:%SZ} (org ledger seq {self.seq}): {self.reason}"
        # the signer's text, printed by every project: one line, no escape (a line break would
        # start a workflow command or a forged log line)
        return "".join(c if c.isprintable() else " " for c in said)


@dataclass(frozen=True)
class LineState:
    """The line as the org ledger's verified statements show it."""

    ledger: str  # where it was read, for messages
    head: tuple[int, str]  # (seq, hash) of the org ledger's last entry
    standing: tuple[Statement, ...]  # verified stops no verified resume lifted, oldest first
    unreadable: tuple[str, ...]  # why it could not be read, or which entries do not verify
    statements: tuple[Statement, ...] = ()  # every verified statement, in ledger order

    @property
    def running(self) -> bool:
        return not self.standing and not self.unreadable

    def why_stopped(self) -> str:
        """Who stopped the line, when and why (every standing stop, the newest first)."""
        shown = [f"stopped by {s.describe()}" for s in reversed(self.standing[-MAX_SHOWN:])]
        more = len(self.standing) - MAX_SHOWN
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")

    def why_unknown(self) -> str:
        more = len(self.unreadable) - MAX_SHOWN
        return "; ".join(self.unreadable[:MAX_SHOWN]) + (f"; and {more} more" if more > 0 else "")

    def summary(self) -> str:
        """One line: running, stopped (by whom, when, why) or unknown (why)."""
        parts = []
        if self.standing:
            parts.append(f"the line is stopped: {self.why_stopped()}")
        if self.unreadable:
            parts.append(f"the line cannot be read ({self.ledger}), so it counts as stopped: {self.why_unknown()}")
        if parts:
            return "; ".join(parts)
        last = next((s for s in reversed(self.statements) if s.action == "resume"), None)
        since = f"; last resumed by {last.describe()}" if last is not None else "; never stopped"
        return f"the line is running ({self.ledger}{since})"


def org_ledger(org: OrgConfig, workdir: Path) -> Ledger:
    """The org ledger: the git backend on the ref `org.ledger` names."""
    settings = org.ledger
    config = LedgerConfig(
        backend="git", remote=settings.remote, ref=settings.ref, token_variable=settings.token_variable
    )
    return open_ledger(config, workdir)


def policies(org: OrgConfig) -> dict[Action, IdentityPolicy]:
    return {
        "stop": IdentityPolicy.from_config(org.stop.identity),
        "resume": IdentityPolicy.from_config(org.resume.identity),
    }


def read_line(
    org: OrgConfig, workdir: Path, trust_config: Any | None, seen: tuple[int, str] | None = None
) -> LineState:
    """The line's state. `trust_config` None: a dry run, which takes signatures on trust (the
    certificate's identity is still checked against the policies). `seen`: the org ledger head
    this project saw last (`last_seen`): a ledger without it was rewritten. Never raises for what
    it finds: an org ledger that cannot be read is a state (unreadable), which denies."""
    ledger = org_ledger(org, workdir)
    try:
        entries = ledger.verify()
    except PipelineKitError as exc:
        return LineState(ledger.describe(), (0, ""), (), (f"cannot read the org ledger: {exc.message}",))
    state = judge_entries(ledger, entries, policies(org), trust_config)
    if seen is not None and not _holds(entries, seen):
        rewritten = f"the org ledger was rewritten: this project's ledger saw seq {seen[0]} ({seen[1][:12]}), gone now"
        return LineState(state.ledger, state.head, state.standing, (rewritten, *state.unreadable), state.statements)
    return state


def _holds(entries: Sequence[Entry], at: tuple[int, str]) -> bool:
    """Whether the org ledger's entry at seq `at[0]` has hash `at[1]` (seq 0: the genesis)."""
    seq, entry_hash = at
    if seq == 0:
        return entry_hash == GENESIS
    return 0 < seq <= len(entries) and entries[seq - 1].hash == entry_hash


ORG_LINE = "org_line"  # a project ledger entry's details key: the org ledger head its decision saw


def last_seen(entries: Sequence[Entry]) -> tuple[int, str] | None:
    """The furthest org ledger head this project's ledger recorded a decision on."""
    seen = [e.details[ORG_LINE] for e in entries if isinstance(e.details.get(ORG_LINE), list)]
    valid = [(s[0], s[1]) for s in seen if len(s) == 2 and isinstance(s[0], int) and isinstance(s[1], str)]
    return max(valid, default=None)


def judge_entries(
    ledger: Ledger, entries: Sequence[Entry], allowed: dict[Action, IdentityPolicy], trust_config: Any | None
) -> LineState:
    """The state the entries' verified statements show (see the module's rules)."""
    verifier = None
    if trust_config is not None:
        from pipeline_kit.verifier import verifier_for

        verifier = verifier_for(trust_config)
    statements: list[Statement] = []
    stray: list[Statement] = []  # verified stops signed on another history: they still stop
    refused: list[tuple[int, str]] = []
    for entry in entries:
        found = _statement(ledger, entry, allowed, verifier)
        if isinstance(found, str):
            refused.append((entry.seq, f"org ledger seq {entry.seq} ({entry.kind}): {found}"))
            continue
        if found.signed_on[0] >= entry.seq or not _holds(entries, found.signed_on):
            # signed on a history this ledger does not have: it was rewritten beneath the statement.
            # A resume there counts for nothing; a stop still stops (a rewrite must not turn a
            # verified stop into an unreadable entry, which --break-glass may waive)
            why = f"signed on seq {found.signed_on[0]} of another history of the org ledger"
            refused.append((entry.seq, f"org ledger seq {entry.seq}: {why}"))
            stray += [found] if found.action == "stop" else []
            continue
        statements.append(found)
    lifted = {stop for s in statements if s.action == "resume" for stop in s.lifts}
    stops = sorted((*statements, *stray), key=lambda s: s.seq)
    standing = tuple(s for s in stops if s.action == "stop" and s.id not in lifted)
    settled = max((s.signed_on[0] for s in statements), default=0)
    unreadable = tuple(why for seq, why in refused if seq > settled)
    return LineState(ledger.describe(), head(entries), standing, unreadable, tuple(statements))


def _statement(
    ledger: Ledger, entry: Entry, allowed: dict[Action, IdentityPolicy], verifier: Any | None
) -> Statement | str:
    """The verified statement `entry` carries, or why it carries none that counts."""
    digest = entry.details.get("statement")
    data = ledger.attachment(digest) if isinstance(digest, str) else None
    if data is None:
        return "carries no signed statement"
    candidate = Candidate(f"org ledger seq {entry.seq}", data)
    claimed = _claimed_action(data)  # only to pick the policy: the verified payload must agree
    if claimed is None:
        return "not a signed stop-the-line statement"
    policy = allowed[claimed]
    if verifier is None:
        accepted = claimed_statement(candidate, policy, PREDICATE)
    else:
        accepted = signed_statement(candidate, policy, verifier, PREDICATE)
    if isinstance(accepted, str):
        return f"{claimed} refused: {accepted}"
    found = _read(accepted, _payload_digest(data), entry.seq)
    if found is None or found.action != claimed:  # judged by the policy of the action it signed
        return f"{claimed} refused: its statement is malformed"
    return found


def _claimed_action(data: bytes) -> Action | None:
    try:
        payload = json.loads(base64.b64decode(json.loads(data)["dsseEnvelope"]["payload"], validate=True))
        action = payload["predicate"]["action"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return action if action in KINDS else None


def _payload_digest(data: bytes) -> str:
    """sha256 of the signed statement (a bundle that verified: its payload is what was signed)."""
    return sha256_bytes(base64.b64decode(json.loads(data)["dsseEnvelope"]["payload"]))


def _read(accepted: Accepted, statement_id: str, seq: int) -> Statement | None:
    predicate = accepted.predicate
    action, reason, lifts = predicate.get("action"), predicate.get("reason"), predicate.get("lifts")
    ledger = predicate.get("ledger")
    signed_on, on_hash = (ledger.get("seq"), ledger.get("sha256")) if isinstance(ledger, dict) else (None, None)
    if action not in KINDS or not isinstance(reason, str) or not isinstance(signed_on, int):
        return None
    if not isinstance(on_hash, str) or not isinstance(lifts, list) or not all(isinstance(x, str) for x in lifts):
        return None
    return Statement(
        id=statement_id,
        action=action,
        signer=accepted.signer.removeprefix("signed by "),
        signed_at=accepted.signed_at,
        reason=reason,
        lifts=frozenset(lifts),
        signed_on=(signed_on, on_hash),
        seq=seq,
    )


def statement(action: Action, reason: str, state: LineState) -> bytes:
    """The in-toto statement of a stop or a resume signed on `state` (a resume lifts every stop
    standing in it), about the org ledger it goes into."""
    seq, entry_hash = state.head if state.head[0] else (0, GENESIS)
    lifts = sorted(s.id for s in state.standing) if action == "resume" else []
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": state.ledger, "digest": {"sha256": sha256_bytes(state.ledger.encode())}}],
            "predicateType": PREDICATE,
            "predicate": {
                "action": action,
                "reason": reason,
                "lifts": lifts,
                "ledger": {"seq": seq, "sha256": entry_hash},
            },
        },
        sort_keys=True,
    ).encode()


TokenProvider = Callable[[], tuple[str, str]]


def sign_line(
    org: OrgConfig, workdir: Path, trust: Trust, action: Action, reason: str, actor: str, token: TokenProvider
) -> tuple[Statement, LineState]:
    """Sign a stop or a resume and append it to the org ledger; returns it (as the ledger now
    verifies it) and the line's state after it. A resume of a running line, a signer the action's
    policy refuses, or a ledger that moved under a resume are refused before anything counts."""
    from sigstore.models import Bundle

    from pipeline_kit.signing import Signable, sign_all

    if not reason.strip():
        raise UsageError("--reason is required: the line's statements say why")
    trust_config = trust.load()
    before = read_line(org, workdir, trust_config)
    if not before.head[1]:  # not even read: nothing to sign on
        raise EnvironmentFailure(f"cannot {action} the line: {before.why_unknown()}")
    if action == "resume" and before.running:
        raise UsageError(f"nothing to resume: {before.summary()}")
    raw, source = token()
    name = f"stop-the-line.{action}.sigstore.json"
    signed = sign_all(trust_config, raw, source, [Signable(name, statement=statement(action, reason, before))])
    bundle = signed.files[name]
    allowed, why = policies(org)[action].accepts_certificate(Bundle.from_json(bundle).signing_certificate)
    if not allowed:  # appended, it would only be an entry that does not verify (which denies)
        raise VerificationError(f"{signed.identity} may not {action} the line: {why} (org.{action}.identity)")
    ledger = org_ledger(org, workdir)

    def unmoved(entries: Sequence[Entry]) -> None:
        if action == "resume" and head(entries) != before.head:  # it would not lift a stop it never saw
            raise Stopped("the org ledger moved while the resume was signed: run resume-the-line again")

    draft = Draft(
        kind=KINDS[action],
        environment=ORG_ENVIRONMENT,
        actor=actor,
        time=datetime.now(timezone.utc).replace(microsecond=0),
        reason=reason,
        details={"statement": sha256_bytes(bundle)},
    )
    entry = ledger.append(draft, [bundle], guard=unmoved)
    after = read_line(org, workdir, trust_config)
    mine = next((s for s in after.statements if s.seq == entry.seq), None)
    if mine is None:
        raise VerificationError(f"the {action} appended at org ledger seq {entry.seq} does not verify as read back")
    return mine, after


RESUME_HINT = "who may resume: pipeline-kit resume-the-line --reason ... (org.resume.identity)"


class LineStopped(Stopped):
    """The org's line is stopped (or cannot be read): nothing moves forward."""
