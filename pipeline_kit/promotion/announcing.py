"""Deploys on dashboards: every arrival, rollback and rollout step this process records is also
published to a Prometheus Pushgateway (`annotations:` in the config, docs/dashboards.md).

The events are taken where they are recorded: a ledger that publishes each entry it appended
(`AnnouncingLedger`), so every use case that records one (promote, arrive, rollout steps, resume,
abort, rollback, a release plan's steps) announces it without knowing of dashboards. What is
published is what this process just did; it decides nothing. Publishing is best effort: a
Pushgateway that is down, slow (bounded by `timeout`) or refuses the push is said through `warn`
and the promotion goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline_kit.config import AnnotationsConfig
from pipeline_kit.ledger import Draft, Entry, Guard, Ledger, arrived
from pipeline_kit.metrics.pushgateway import Gauge, Pushgateway

TIMESTAMP = "pipeline_kit_event_timestamp_seconds"
WEIGHT = "pipeline_kit_rollout_weight_percent"
STEP = "pipeline_kit_rollout_step"


@dataclass(frozen=True)
class Event:
    """One announcement: its group (environment, event) and its gauges."""

    environment: str
    name: str  # arrival | rollback | rollout | deploy-failed
    gauges: tuple[Gauge, ...]


def event_of(entry: Entry) -> Event | None:
    """What a dashboard is told of `entry`, or None when it tells nothing there. A rollback's
    own deploy is no arrival of its own: the rollback says it."""
    labels = {"release": entry.release or "", "seq": str(entry.seq)}
    at = entry.time.timestamp()
    help_ = "When pipeline-kit recorded the event (unix seconds); grouped by environment and event."
    if entry.kind == "rolled-back":
        labels = {**labels, "release": str(entry.details.get("from") or ""), "to": entry.release or ""}
        return Event(entry.environment, "rollback", (Gauge(TIMESTAMP, at, labels, help_),))
    if entry.kind == "rollout":
        state, step, weight = entry.details.get("state"), entry.details.get("step"), entry.details.get("weight")
        if type(step) is not int or type(weight) is not int:
            return None
        labels = {**labels, "state": str(state)}
        return Event(
            entry.environment,
            "rollout",
            (
                Gauge(TIMESTAMP, at, labels, help_),
                Gauge(WEIGHT, float(weight), labels, "Traffic on the rollout's new release, percent."),
                Gauge(STEP, float(step + 1), labels, "The rollout's step, counted from 1 (0: started)."),
            ),
        )
    if entry.kind == "deploy-failed":
        return Event(entry.environment, "deploy-failed", (Gauge(TIMESTAMP, at, labels, help_),))
    if arrived(entry) and "rollback" not in entry.details:
        return Event(entry.environment, "arrival", (Gauge(TIMESTAMP, at, labels, help_),))
    return None


def pushgateway(config: AnnotationsConfig, env: Mapping[str, str]) -> Pushgateway | str:
    """The configured Pushgateway with its token read now, or why it cannot be used."""
    headers = {}
    if config.token_variable:
        token = env.get(config.token_variable)
        if not token:
            return f"annotations.token-variable: the variable {config.token_variable} is not set"
        headers["Authorization"] = f"Bearer {token}"
    try:  # the CA bundle is read here: one that cannot be is said like any failure to publish
        return Pushgateway(config.url, config.job, headers=headers, timeout=config.timeout, ca_file=config.ca_file)
    except OSError as exc:  # missing, unreadable, not PEM (ssl.SSLError is an OSError)
        return f"annotations.ca-file {config.ca_file}: cannot be used: {exc.strerror or exc}"


def announce(target: Pushgateway | str, entry: Entry) -> str | None:
    """Publish `entry`'s event; None when published or nothing to tell, else why it was not."""
    event = event_of(entry)
    if event is None:
        return None
    if isinstance(target, str):
        problem: str | None = target
    else:
        try:
            problem = target.replace({"environment": event.environment, "event": event.name}, event.gauges)
        except (OSError, ValueError) as exc:  # a CA file that cannot be read, a value the format cannot carry
            problem = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    if problem is None:
        return None
    return f"the {event.name} in {event.environment} (ledger seq {entry.seq}) was not published: {problem}"


class AnnouncingLedger(Ledger):
    """`inner`, whose every appended entry is also announced; a failure goes to `warn`, never up.
    A Pushgateway that failed once is not asked again by this process: a rollout's later steps
    (and its traffic back to stable) never wait for it a second time."""

    def __init__(self, inner: Ledger, target: Pushgateway | str, warn: Callable[[str], None]) -> None:
        self.inner = inner
        self.target = target
        self.warn = warn

    def lines(self) -> list[bytes]:
        return self.inner.lines()

    def append(self, draft: Draft, attachments: Sequence[bytes] = (), *, guard: Guard | None = None) -> Entry:
        entry = self.inner.append(draft, attachments, guard=guard)
        problem = announce(self.target, entry)
        if problem is not None:
            self.warn(problem)
            if not isinstance(self.target, str):
                self.target = f"not asked again after it failed: {problem.split(': ', 1)[1]}"
        return entry

    def attachment(self, sha256: str) -> bytes | None:
        return self.inner.attachment(sha256)

    def nothing_here(self) -> str:
        return self.inner.nothing_here()

    def describe(self) -> str:
        return self.inner.describe()


def announcing(
    ledger: Ledger, config: AnnotationsConfig | None, env: Mapping[str, str], warn: Callable[[str], None]
) -> Ledger:
    """`ledger`, announcing what it records when the config has `annotations:`."""
    if config is None:
        return ledger
    return AnnouncingLedger(ledger, pushgateway(config, env), warn)
