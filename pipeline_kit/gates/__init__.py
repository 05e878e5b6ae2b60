"""Promotion gates: one module per gate, and the engine that runs them.

`compile_gates` turns an environment's gate list into gate objects (validating names and
options against each gate's model, errors naming the config line); `evaluate` runs them
concurrently, each with its own timeout, turning exceptions and timeouts into `error`.
The integrity gates (signature, provenance, sbom), previous-stage (when the environment has
`after:`) and rollback-hold always run, and stop-the-line whenever the config has `org:`:
forgetting to list them must not open the door.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline_kit._internal.validation import first_problem
from pipeline_kit.config import Config, config_error
from pipeline_kit.gates.approvals import ApprovalsGate
from pipeline_kit.gates.checks import ChecksGate
from pipeline_kit.gates.command import CommandGate
from pipeline_kit.gates.contracts import ContractsGate
from pipeline_kit.gates.freeze import FreezeGate
from pipeline_kit.gates.interface import Gate, GateResult, Outcome, PromotionContext
from pipeline_kit.gates.metric import MetricGate
from pipeline_kit.gates.migrations import MigrationsGate
from pipeline_kit.gates.previous_stage import PreviousStageGate
from pipeline_kit.gates.provenance import ProvenanceGate
from pipeline_kit.gates.rollback_hold import RollbackHoldGate
from pipeline_kit.gates.sbom import SbomGate
from pipeline_kit.gates.signature import SignatureGate
from pipeline_kit.gates.slo import SloGate
from pipeline_kit.gates.stop_the_line import StopTheLineGate

__all__ = ["GATES", "Gate", "GateResult", "PromotionContext", "compile_gates", "evaluate"]

GATES: dict[str, type[Gate]] = {
    gate.name: gate
    for gate in (
        SignatureGate,
        ProvenanceGate,
        ApprovalsGate,
        SbomGate,
        PreviousStageGate,
        ChecksGate,
        FreezeGate,
        CommandGate,
        RollbackHoldGate,
        MetricGate,
        SloGate,
        MigrationsGate,
        ContractsGate,
        StopTheLineGate,
    )
}


GRACE_SECONDS = 0.5
# Gates that judge the evidence itself; every promotion runs them, listed or not.
INTEGRITY: tuple[type[Gate], ...] = (SignatureGate, ProvenanceGate, SbomGate)


def compile_gates(config: Config, environment: str) -> list[Gate]:
    """The gates guarding `environment`, options validated; implicit gates added."""
    path = Path(config.source_path or "pipeline-kit.yml")
    compiled: list[Gate] = []
    for index, entry in enumerate(config.environments[environment].gates):
        name, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        loc: list[int | str] = ["environments", environment, "gates", index]
        gate = GATES.get(name)
        if gate is None:
            raise config_error(path, loc, f"unknown gate {name!r}; known gates: {', '.join(GATES)}")
        try:
            compiled.append(gate(gate.options_model.model_validate(options or {})))
        except ValidationError as exc:
            where, problem = first_problem(exc)
            raise config_error(path, [*loc, name, *where], problem) from exc
        unmet = compiled[-1].config_problem(config)
        if unmet:
            raise config_error(path, [*loc, name], unmet)
    names = {gate.name for gate in compiled}
    compiled[:0] = [gate(gate.options_model()) for gate in INTEGRITY if gate.name not in names]
    if config.environments[environment].after is not None and "previous-stage" not in names:
        compiled.append(PreviousStageGate(PreviousStageGate.options_model()))
    if "rollback-hold" not in names:
        compiled.append(RollbackHoldGate(RollbackHoldGate.options_model()))
    if config.migrations is not None and "migrations" not in names:  # configured: always judged
        compiled.append(MigrationsGate(MigrationsGate.options_model()))
    if config.contracts is not None and "contracts" not in names:
        compiled.append(ContractsGate(ContractsGate.options_model()))
    if config.org is not None and StopTheLineGate.name not in names:  # the org's switch: first, always
        line = StopTheLineGate(StopTheLineGate.options_model())
        unmet = line.config_problem(config)
        if unmet:
            raise config_error(path, ["org"], unmet)
        compiled.insert(0, line)
    return compiled


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
