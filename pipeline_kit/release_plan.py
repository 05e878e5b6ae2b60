"""A release plan (`release-plan.yml`): the services released together, each a project directory
with its own `pipeline-kit.yml`, evidence and ledger, and the order they depend on. Read and
checked here; applied as a saga by `saga`, compiled into a CI pipeline by `saga_pipelines`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline_kit.config import Config, ConfigModel, LedgerConfig, load_config, parse_yaml
from pipeline_kit.errors import ConfigError
from pipeline_kit.ledger import DEFAULT_FILE, Ledger, open_ledger


class PlanStep(ConfigModel):
    service: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    path: str  # the service's project directory, relative to the plan
    needs: list[str] = Field(default_factory=list)
    compensate: str | list[str] | None = None  # default: the service's signed rollback

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError("a directory beside the plan (no absolute path, no ..)")
        return value


class ReleasePlan(ConfigModel):
    version: Literal[1]
    steps: list[PlanStep] = Field(min_length=1, max_length=1000)
    ledger: LedgerConfig = LedgerConfig()  # where the saga is recorded (default beside the plan)
    parallel: int = Field(default=4, ge=1, le=32, strict=True)  # independent steps at once

    @model_validator(mode="after")
    def _dag(self) -> ReleasePlan:
        names = [step.service for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("each service appears once")
        for step in self.steps:
            unknown = [need for need in step.needs if need not in names]
            if unknown:
                raise ValueError(f"{step.service}.needs names no step: {', '.join(unknown)}")
        self.order()  # refuses a cycle
        return self

    def order(self) -> list[PlanStep]:
        """The steps, each after everything it needs (file order among the free ones)."""
        done: list[PlanStep] = []
        placed: set[str] = set()
        remaining = list(self.steps)
        while remaining:
            ready = [step for step in remaining if set(step.needs) <= placed]
            if not ready:
                raise ValueError(f"steps form a cycle: {', '.join(step.service for step in remaining)}")
            done.append(ready[0])
            placed.add(ready[0].service)
            remaining.remove(ready[0])
        return done


@dataclass(frozen=True)
class LoadedPlan:
    plan: ReleasePlan
    path: Path
    digest: str  # sha256 of the file: the plan a saga ran is named by it
    configs: Mapping[str, Config]  # each step's service's pipeline-kit.yml, read once

    @property
    def root(self) -> Path:
        return self.path.parent

    def ledger(self) -> Ledger:
        return open_ledger(self.plan.ledger, self.root)

    def directory(self, step: PlanStep) -> Path:
        return self.root / step.path

    def config_path(self, step: PlanStep) -> Path:
        return self.directory(step) / "pipeline-kit.yml"


def load_plan(path: Path) -> LoadedPlan:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from exc
    plan = parse_yaml(text, path, ReleasePlan)
    configs = {}
    for step in plan.steps:
        config = path.parent / step.path / "pipeline-kit.yml"
        if not config.is_file():
            raise ConfigError(path, f"steps.{step.service}.path", f"{step.path}/pipeline-kit.yml not found")
        configs[step.service] = load_config(config)
    loaded = LoadedPlan(plan, path, hashlib.sha256(text.encode()).hexdigest(), configs)
    _refuse_shared_ledgers(loaded)
    return loaded


def _ledger_place(ledger: LedgerConfig, directory: Path) -> tuple[str, ...]:
    """Where a ledger's entries live, so that two configs naming one place compare equal."""
    if ledger.backend == "git":
        local = ledger.remote.startswith(("/", "./", "../"))
        return ("git", str((directory / ledger.remote).resolve()) if local else ledger.remote, ledger.ref)
    return ("file", str((directory / (ledger.path or DEFAULT_FILE)).resolve()))


def _refuse_shared_ledgers(loaded: LoadedPlan) -> None:
    """Each service, and the plan, keeps a ledger of its own: on one ref, one service's history
    would read as another's (its rollback target, its current release, its delivery figures)."""
    seen = {_ledger_place(loaded.plan.ledger, loaded.root): "the plan"}
    for step in loaded.plan.steps:
        config = loaded.config_path(step)
        place = _ledger_place(loaded.configs[step.service].ledger, config.parent)
        if place in seen:
            raise ConfigError(
                config,
                "ledger",
                f"{' '.join(place[1:])} is also {seen[place]}'s ledger: each service needs a ledger of its own",
                hint=f"give {step.service} a ref of its own, e.g. ref: refs/pipeline-kit/{step.service}",
            )
        seen[place] = step.service
