"""An environment (`environments.NAME`): its place in the order, its gates and deploy, and how a
release rolls out there (strategy: canary or blue-green; traffic: how the weight is set)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline_kit.config.analysis import AnalysisConfig, OnFailureConfig
from pipeline_kit.config.base import ConfigModel, EnvName, parse_duration


class CanaryStep(ConfigModel):
    """One step of a canary: send `weight` percent of traffic to the new release, then analyse it
    (the environment's `analysis:`) or, without one, wait `pause`. `pause: manual` stops the
    rollout until `pipeline-kit rollout resume`."""

    weight: int = Field(ge=0, le=100, strict=True)
    pause: str | None = None  # a duration, or `manual`

    @field_validator("pause")
    @classmethod
    def _pause(cls, value: str | None) -> str | None:
        if value is not None and value != "manual" and parse_duration(value) > timedelta(days=7):
            raise ValueError("pause: at most 7d (or manual)")
        return value


class CanaryConfig(ConfigModel):
    steps: list[CanaryStep] = Field(min_length=1, max_length=100)

    @field_validator("steps")
    @classmethod
    def _rising_to_full(cls, value: list[CanaryStep]) -> list[CanaryStep]:
        weights = [step.weight for step in value]
        if weights != sorted(weights):
            raise ValueError(f"step weights must not go down: {weights}")
        if weights[-1] != 100:
            raise ValueError("the last step must send all traffic (weight: 100)")
        return value


class BlueGreenConfig(ConfigModel):
    """Deploy to the idle slot, analyse it with no traffic (its preview: `{{ slot }}` and the slot
    address reach the queries and the deploy command), then switch all traffic at once and analyse
    again. The old slot is never touched until the next rollout deploys to it: switching back is
    one traffic change."""


class StrategyConfig(ConfigModel):
    canary: CanaryConfig | None = None
    blue_green: BlueGreenConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> StrategyConfig:
        if (self.canary is None) == (self.blue_green is None):
            raise ValueError("give exactly one strategy: canary or blue-green")
        return self

    def steps(self) -> list[CanaryStep]:
        """Blue-green is a canary of two steps: the preview (no traffic, analysed), then all."""
        if self.canary is not None:
            return list(self.canary.steps)
        return [CanaryStep(weight=0), CanaryStep(weight=100)]


class TrafficConfig(ConfigModel):
    """How traffic is split between the two slots a rollout alternates between: `command` (yours,
    given the weight and the slots' addresses) or `nginx` (weighted upstreams in a file your nginx
    config includes, checked with `test` and applied with `reload`)."""

    type: Literal["command", "nginx"]
    slots: dict[Literal["blue", "green"], str] = Field(min_length=2)  # slot -> address (host:port)
    command: str | list[str] | None = None  # command provider
    upstream_file: str | None = None  # nginx: the file rendered (relative to the project)
    upstream: str = Field(default="pipeline_kit", pattern=r"^[A-Za-z0-9_]+$")  # nginx upstream name
    test: str | list[str] | None = None  # nginx: validate the config, e.g. nginx -t -p DIR -c FILE
    reload: str | list[str] | None = None  # nginx: apply it, e.g. nginx -s reload -p DIR -c FILE
    pass_env: list[EnvName] = Field(default_factory=list)
    timeout: float = Field(default=60.0, gt=0, le=600, strict=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _complete(self) -> TrafficConfig:
        if self.type == "command" and not self.command:
            raise ValueError("the command provider needs command:")
        if self.type == "nginx" and not (self.upstream_file and self.reload):
            raise ValueError("the nginx provider needs upstream-file: and reload:")
        if self.upstream_file and (Path(self.upstream_file).is_absolute() or ".." in Path(self.upstream_file).parts):
            raise ValueError("upstream-file: a file inside the project")
        for slot, address in self.slots.items():
            if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", address):
                raise ValueError(f"slots.{slot}: expected host:port, got {address!r}")
        return self


class ProbeConfig(ConfigModel):
    """How `pipeline-kit drift` asks the environment what it runs: a `command` printing a digest,
    a release id or a version, or an http(s) `url` answering one, within `timeout` seconds. With a
    rollout strategy each slot is asked: the command gets PIPELINE_KIT_SLOT and
    PIPELINE_KIT_SLOT_ADDRESS, and `{{ slot }}` / `{{ address }}` in the url are replaced. `weights`:
    a command printing `SLOT PERCENT` lines, where the traffic provider cannot say (`command`)."""

    command: str | list[str] | None = None
    url: str | None = Field(default=None, max_length=2048)
    timeout: float = Field(default=10.0, gt=0, le=300, strict=True, allow_inf_nan=False)
    pass_env: list[EnvName] = Field(default_factory=list)  # variables the probe commands may see
    weights: str | list[str] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ProbeConfig:
        if (self.command is None) == (self.url is None) or self.command in ("", []):
            raise ValueError("give exactly one of command: or url:")
        if self.url is not None and not re.match(r"https?://[^/\s]", self.url):
            raise ValueError(f"url: an http(s) URL, got {self.url[:80]!r}")
        return self


class EnvironmentConfig(ConfigModel):
    """One deployment environment: where it sits in the order and what guards its door."""

    after: str | None = None
    soak: str | None = None  # how long the release must have lived in `after` first
    url: str | None = None  # where the environment serves the release (the VSA's resourceUri)
    # Each gate: a name, or a one-key mapping of name to options. Gate names and options are
    # checked by pipeline_kit.gates when the environments are compiled.
    gates: list[str | dict[str, Any]] = Field(default_factory=list)
    deploy: str | list[str] | None = None  # default deploy command for promote/rollback
    pass_env: list[EnvName] = Field(default_factory=list)  # variables the deploy command may see
    analysis: AnalysisConfig | None = None  # measured after the deploy succeeded (at each step)
    on_failure: OnFailureConfig = Field(default_factory=OnFailureConfig)  # what a failed analysis does
    strategy: StrategyConfig | None = None  # canary or blue-green; none: all at once
    traffic: TrafficConfig | None = None  # how a strategy moves traffic
    probe: ProbeConfig | None = None  # how `drift` asks what the environment runs

    @model_validator(mode="after")
    def _strategy_needs_traffic(self) -> EnvironmentConfig:
        if self.strategy is not None and self.traffic is None:
            raise ValueError("strategy: needs traffic: (how the weight is set)")
        if self.strategy is not None and self.strategy.blue_green is not None and self.analysis is None:
            raise ValueError("blue-green needs analysis: (what judges the preview before the switch)")
        return self

    @field_validator("soak")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _soak_needs_after(self) -> EnvironmentConfig:
        if self.soak is not None and self.after is None:
            raise ValueError("soak: needs after: (the environment the release must have lived in)")
        return self

    @field_validator("gates")
    @classmethod
    def _gate_shape(cls, value: list[str | dict[str, Any]]) -> list[str | dict[str, Any]]:
        for gate in value:
            if isinstance(gate, dict) and len(gate) != 1:
                raise ValueError("a gate is a name, or a mapping of one name to its options")
        return value
