"""Promotion gates: one module per gate, and the engine that runs them.

`compile_gates` turns an environment's gate list into gate objects (validating names and
options against each gate's model, errors naming the config line); `evaluate` runs them
concurrently, each with its own timeout, turning exceptions and timeouts into `error`.
The integrity gates (signature, provenance, sbom), previous-stage (when the environment has
`after:`) and rollback-hold always run, and stop-the-line whenever the config has `org:`:
forgetting to list them must not open the door.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline_kit._internal.validation import first_problem
from pipeline_kit.config import Config, config_error
from pipeline_kit.gates.interface import Gate, GateResult, Outcome, PromotionContext

__all__ = ["GATES", "Gate", "GateResult", "PromotionContext", "compile_gates", "evaluate"]

# Gate name -> the module holding it and its class: a module is imported only when a config
# names its gate (or it always runs), so a promotion does not load gates it does not use.
_MODULES: dict[str, tuple[str, str]] = {
    "signature": ("signature", "SignatureGate"),
    "provenance": ("provenance", "ProvenanceGate"),
    "approvals": ("approvals", "ApprovalsGate"),
    "sbom": ("sbom", "SbomGate"),
    "previous-stage": ("previous_stage", "PreviousStageGate"),
    "checks": ("checks", "ChecksGate"),
    "freeze": ("freeze", "FreezeGate"),
    "command": ("command", "CommandGate"),
    "rollback-hold": ("rollback_hold", "RollbackHoldGate"),
    "metric": ("metric", "MetricGate"),
    "slo": ("slo", "SloGate"),
    "migrations": ("migrations", "MigrationsGate"),
    "contracts": ("contracts", "ContractsGate"),
    "stop-the-line": ("stop_the_line", "StopTheLineGate"),
}


class _Registry(Mapping[str, type[Gate]]):
    """Every gate by name, each module imported on first look-up."""

    def __getitem__(self, name: str) -> type[Gate]:
        module, cls = _MODULES[name]
        gate: type[Gate] = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
        return gate

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


GATES: Mapping[str, type[Gate]] = _Registry()

GRACE_SECONDS = 0.5
# Gates that judge the evidence itself; every promotion runs them, listed or not.
INTEGRITY = ("signature", "provenance", "sbom")


def compile_gates(config: Config, environment: str) -> list[Gate]:
    """The gates guarding `environment`, options validated; implicit gates added."""
    path = Path(config.source_path or "pipeline-kit.yml")
    compiled: list[Gate] = []
    for index, entry in enumerate(config.environments[environment].gates):
        name, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        loc: list[int | str] = ["environments", environment, "gates", index]
        if name not in GATES:
            raise config_error(path, loc, f"unknown gate {name!r}; known gates: {', '.join(GATES)}")
        gate = GATES[name]
        try:
            compiled.append(gate(gate.options_model.model_validate(options or {})))
        except ValidationError as exc:
            where, problem = first_problem(exc)
            raise config_error(path, [*loc, name, *where], problem) from exc
        unmet = compiled[-1].config_problem(config)
        if unmet:
            raise config_error(path, [*loc, name], unmet)
    names = {gate.name for gate in compiled}
    compiled[:0] = [_default(name) for name in INTEGRITY if name not in names]
    if config.environments[environment].after is not None and "previous-stage" not in names:
        compiled.append(_default("previous-stage"))
    if "rollback-hold" not in names:
        compiled.append(_default("rollback-hold"))
    if config.migrations is not None and "migrations" not in names:  # configured: always judged
        compiled.append(_default("migrations"))
    if config.contracts is not None and "contracts" not in names:
        compiled.append(_default("contracts"))
    if config.org is not None and "stop-the-line" not in names:  # the org's switch: first, always
        line = _default("stop-the-line")
        unmet = line.config_problem(config)
        if unmet:
            raise config_error(path, ["org"], unmet)
        compiled.insert(0, line)
    return compiled


def _default(name: str) -> Gate:
    """The gate `name` with its default options."""
    gate = GATES[name]
    return gate(gate.options_model())


def evaluate(gates: list[Gate], context: PromotionContext) -> list[GateResult]:
    """Every gate's result, in gate order; none is skipped because another failed. Each gate runs
    in a daemon thread: one that outlives its timeout is abandoned, and never keeps the process
    from exiting once the verdict is given (a thread pool would join it at exit)."""
    done: dict[int, GateResult] = {}
    threads = []
    for index, gate in enumerate(gates):
        thread = threading.Thread(
            target=lambda i=index, g=gate: done.__setitem__(i, _timed(g, context)),
            name=f"gate-{gate.name}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    started = time.monotonic()
    results = []
    for index, (gate, thread) in enumerate(zip(gates, threads, strict=True)):
        # A gate enforces its own timeout where it can (a subprocess is killed); the engine's
        # deadline, a little later, is the backstop for gates that cannot.
        thread.join(max(0.0, gate.timeout + GRACE_SECONDS - (time.monotonic() - started)))
        result = done.get(index)
        if result is None:
            result = GateResult(gate.name, "error", f"timed out after {gate.timeout:g}s", {}, int(gate.timeout * 1000))
        results.append(result)
    return results


def _into(done: dict[int, GateResult], index: int, gate: Gate, context: PromotionContext) -> None:
    done[index] = _timed(gate, context)


def _timed(gate: Gate, context: PromotionContext) -> GateResult:
    start = time.monotonic()
    try:
        outcome = gate.evaluate(context)
    except Exception as exc:  # a gate that raises denies: fail closed
        outcome = Outcome("error", f"{type(exc).__name__}: {exc}")
    evidence: dict[str, Any] = dict(outcome.evidence)
    return GateResult(gate.name, outcome.verdict, outcome.reason, evidence, int((time.monotonic() - start) * 1000))
