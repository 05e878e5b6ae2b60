"""`pipeline-kit.yml`: loading, validation and the typed configuration model.

A bad file is reported as one line naming the file, the line, the key and what was expected,
e.g. ``pipeline-kit.yml: line 4: artifact.outputs: required key is missing``.

Here: the whole file (`Config`, its cross-references and the environment order) and loading it.
Its parts live by concept: `base` (the strict model, names, durations), `sections` (artifact,
sbom, signing, flags, ledger, forge, migrations, contracts), `analysis` (metrics and what measures
a deploy), `environments` (gates, strategies, traffic) and `loading` (strict YAML, located
errors). Every name is importable from `pipeline_kit.config`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline_kit.config.analysis import (
    AnalysisConfig,
    CheckName,
    Comparison,
    Finite,
    MetricCheck,
    MetricProviderConfig,
    OnFailureConfig,
)
from pipeline_kit.config.base import MAX_DURATION, ConfigModel, EnvName, inside_project, parse_duration
from pipeline_kit.config.environments import (
    BlueGreenConfig,
    CanaryConfig,
    CanaryStep,
    EnvironmentConfig,
    ProbeConfig,
    StrategyConfig,
    TrafficConfig,
)
from pipeline_kit.config.loading import MAX_EXPANDED_NODES, config_error, parse_yaml
from pipeline_kit.config.sections import (
    AnnotationsConfig,
    ArtifactConfig,
    ContractsConfig,
    FlagsConfig,
    ForgeConfig,
    IdentityConfig,
    LedgerConfig,
    MigrationsConfig,
    OrgConfig,
    OrgLedgerConfig,
    OrgRoleConfig,
    SbomConfig,
    SbomSourceConfig,
    SbomSourceType,
    SigningConfig,
)
from pipeline_kit.errors import ConfigError

__all__ = [
    "ENVIRONMENT_NAME",
    "MAX_DURATION",
    "MAX_EXPANDED_NODES",
    "AnalysisConfig",
    "AnnotationsConfig",
    "ArtifactConfig",
    "BlueGreenConfig",
    "CanaryConfig",
    "CanaryStep",
    "CheckName",
    "Comparison",
    "Config",
    "ConfigModel",
    "ContractsConfig",
    "EnvName",
    "EnvironmentConfig",
    "Finite",
    "FlagsConfig",
    "ForgeConfig",
    "IdentityConfig",
    "LedgerConfig",
    "MetricCheck",
    "MetricProviderConfig",
    "MigrationsConfig",
    "OnFailureConfig",
    "OrgConfig",
    "OrgLedgerConfig",
    "OrgRoleConfig",
    "ProbeConfig",
    "SbomConfig",
    "SbomSourceConfig",
    "SbomSourceType",
    "SigningConfig",
    "StrategyConfig",
    "TrafficConfig",
    "config_error",
    "inside_project",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_yaml",
]

ENVIRONMENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")  # what an environment may be called


class Config(ConfigModel):
    version: Literal[1]
    artifact: ArtifactConfig
    sbom: SbomConfig = Field(default_factory=SbomConfig)
    signing: SigningConfig = Field(default_factory=SigningConfig)
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    org: OrgConfig | None = None  # the org-wide stop-the-line switch: every promotion obeys it
    forge: ForgeConfig = Field(default_factory=ForgeConfig)
    metrics: dict[str, MetricProviderConfig] = Field(default_factory=dict)
    flags: FlagsConfig | None = None
    migrations: MigrationsConfig | None = None
    contracts: ContractsConfig | None = None
    annotations: AnnotationsConfig | None = None
    # Set by load_config: the file's sha256 (the promotion policy's digest) and path.
    source_sha256: str | None = Field(default=None, exclude=True)
    source_path: str | None = Field(default=None, exclude=True)

    @property
    def secret_variables(self) -> frozenset[str]:
        """Every variable the config names as holding a secret (a token, a header's value): the
        kit reads them, and no child process ever sees them."""
        names = {
            self.ledger.token_variable,
            self.org.ledger.token_variable if self.org else None,
            self.forge.token_variable,
            self.flags.token_variable if self.flags else None,
            self.annotations.token_variable if self.annotations else None,
        }
        for provider in self.metrics.values():
            names |= {provider.token_variable, *provider.headers.values()}
        return frozenset(name for name in names if name)

    @field_validator("version", mode="before")
    @classmethod
    def _exactly_one(cls, value: object) -> object:
        # `true` and `1.0` equal 1 in Python: the schema version is the integer 1, nothing else
        if type(value) is not int:
            raise ValueError(f"expected the integer 1, got {type(value).__name__} {str(value)[:20]!r}")
        return value

    @field_validator("environments")
    @classmethod
    def _ordered(cls, value: dict[str, EnvironmentConfig]) -> dict[str, EnvironmentConfig]:
        for name, environment in value.items():
            if not ENVIRONMENT_NAME.fullmatch(name):
                raise ValueError(f"environment name {name!r}: use lowercase letters, digits, - and _")
            if environment.after is not None and environment.after not in value:
                raise ValueError(f"{name}.after names no environment: {environment.after!r}")
        urls: dict[str, str] = {}
        for name, environment in value.items():  # the url is the VSA's resourceUri: one per environment
            if environment.url is not None and urls.setdefault(environment.url, name) != name:
                raise ValueError(f"{name}.url is {urls[environment.url]}'s too: a VSA for one would count for both")
        acyclic: set[str] = set()  # each environment is walked once: linear in their number
        for name in value:
            path: dict[str, None] = {}
            current: str | None = name
            while current is not None and current not in acyclic:
                if current in path:
                    cycle = [*path, current]
                    shown = cycle if len(cycle) <= 8 else [*cycle[:3], "...", *cycle[-3:]]
                    raise ValueError(f"environments form a cycle: {' -> '.join(shown)}")
                path[current] = None
                current = value[current].after
            acyclic.update(path)
        return value

    @model_validator(mode="after")
    def _references(self) -> Config:
        for name, environment in self.environments.items():
            analysis = environment.analysis
            if analysis is not None and analysis.provider not in self.metrics:
                raise ValueError(f"{name}.analysis.provider names no entry of metrics: {analysis.provider!r}")
            compares = analysis is not None and any(check.compare for check in analysis.checks)
            if compares and environment.strategy is None:
                raise ValueError(
                    f"{name}.analysis: a check with compare: needs a strategy: (the stable slot serves the baseline)"
                )
            if environment.on_failure.kill_switches and self.flags is None:
                raise ValueError(f"{name}.on-failure.kill-switches needs a flags: section (where the flags live)")
        passed_on = [("artifact.pass-env", self.artifact.pass_env)]
        for name, environment in self.environments.items():
            passed_on.append((f"environments.{name}.pass-env", environment.pass_env))
            traffic = environment.traffic.pass_env if environment.traffic else []
            passed_on.append((f"environments.{name}.traffic.pass-env", traffic))
            probe = environment.probe.pass_env if environment.probe else []
            passed_on.append((f"environments.{name}.probe.pass-env", probe))
        from pipeline_kit._internal.proc import CHILD_SECRETS

        for where, names in passed_on:
            leaked = sorted(set(names) & (self.secret_variables | CHILD_SECRETS))
            if leaked:
                raise ValueError(f"{where} names {leaked[0]}, a secret the kit uses: no child process may see it")
        return self

    def environment_order(self) -> list[str]:
        """Environments, each after the one it follows (dev, staging, prod)."""
        placed: dict[str, None] = {}
        for name in self.environments:
            chain: list[str] = []  # walked without recursion, and only up to a placed one
            current: str | None = name
            while current is not None and current not in placed:
                chain.append(current)
                current = self.environments[current].after
            placed.update(dict.fromkeys(reversed(chain)))
        return list(placed)

    def upstream(self, environment: str) -> list[str]:
        """The environments a release must pass before `environment`, nearest first."""
        chain = []
        current = self.environments[environment].after
        while current is not None:
            chain.append(current)
            current = self.environments[current].after
        return chain

    @field_validator("sbom", "signing", "ledger", "environments", "forge", "metrics", mode="before")
    @classmethod
    def _empty_section_is_default(cls, value: Any) -> Any:
        # A section whose keys are all commented out parses as null: treat it as empty.
        return {} if value is None else value


def load_config(path: Path) -> Config:
    """Parse and validate a config file; every problem is a one-line ConfigError (exit 2)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found", hint="run `pipeline-kit init`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from exc
    config = parse_config(text, path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return config.model_copy(update={"source_sha256": digest, "source_path": str(path)})


def parse_config(text: str, path: Path) -> Config:
    return parse_yaml(text, path, Config)
