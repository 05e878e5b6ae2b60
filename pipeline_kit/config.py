"""`pipeline-kit.yml`: loading, validation and the typed configuration model.

A bad file is reported as one line naming the file, the line, the key and what was expected,
e.g. ``pipeline-kit.yml: line 4: artifact.outputs: required key is missing``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline_kit._internal.validation import dotted, first_problem
from pipeline_kit.digest import output_glob_problem
from pipeline_kit.errors import ConfigError
from pipeline_kit.queries import template_problem

# The SBOM source kinds a config may name; pipeline_kit.sbom registers one reader for each.
SbomSourceType = Literal["requirements", "poetry", "uv", "pipfile", "pylock", "environment", "npm", "go", "cargo"]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):  # type: ignore[valid-type,misc]
    """Safe YAML loader that refuses duplicate keys instead of silently keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:  # `? [a, b] : ...`: a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


class ConfigModel(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=lambda name: name.replace("_", "-"),
        populate_by_name=True,
    )


# Variables a child process may additionally see (`pass-env`): names only, never values here.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)]


class ArtifactConfig(ConfigModel):
    name: str = Field(min_length=1)
    version: str | None = None
    # A string runs through the shell (so `make && make dist` works); a list runs as-is.
    build: str | list[str] | None = None
    outputs: list[str] = Field(min_length=1)
    pass_env: list[EnvName] = Field(default_factory=list)  # e.g. NPM_TOKEN for a private registry

    @field_validator("outputs")
    @classmethod
    def _relative_globs(cls, value: list[str]) -> list[str]:
        for pattern in value:
            problem = output_glob_problem(pattern)
            if problem:
                raise ValueError(f"output glob {pattern[:80]!r} {problem}")
        return value


class SbomSourceConfig(ConfigModel):
    path: str = Field(min_length=1)
    type: SbomSourceType | None = None


class SbomConfig(ConfigModel):
    # None: detect lockfiles in the project directory.
    sources: list[str | SbomSourceConfig] | None = None

    def entries(self) -> list[SbomSourceConfig] | None:
        if self.sources is None:
            return None
        return [s if isinstance(s, SbomSourceConfig) else SbomSourceConfig(path=s) for s in self.sources]


class IdentityConfig(ConfigModel):
    """Who must have signed evidence for it to count."""

    issuer: str = Field(min_length=1)
    san: str | None = None
    san_regex: str | None = None
    repository: str | None = None
    ref: str | None = None

    @field_validator("san_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_san(self) -> IdentityConfig:
        if (self.san is None) == (self.san_regex is None):
            raise ValueError("set exactly one of san or san-regex")
        return self


class SigningConfig(ConfigModel):
    identity: IdentityConfig | None = None


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `1h30m`, `2d`: a positive duration."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"expected a duration like 30m, 1h or 2d12h, got {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {text[:40]!r} is too long") from None
    if duration > MAX_DURATION:
        raise ValueError(f"duration {text[:40]!r} is longer than {MAX_DURATION.days} days")
    return duration


MAX_DURATION = timedelta(days=3660)  # ten years: anything longer is a typo


Finite = Annotated[float, Field(allow_inf_nan=False, strict=False)]
CheckName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class MetricProviderConfig(ConfigModel):
    """A metrics backend, named under `metrics:`; the metric and slo gates and the analysis after
    a deploy query it. Secrets are named, never written: header values and the bearer token come
    from environment variables."""

    type: Literal["prometheus"]
    url: str = Field(pattern=r"^https?://[^\s]+$")
    headers: dict[str, EnvName] = Field(default_factory=dict)  # header name -> variable with its value
    token_variable: EnvName | None = None  # bearer token
    ca_file: str | None = None  # PEM bundle to verify an https server with
    # seconds per query (sent to the server as its own timeout too): a number, finite, at most 5 min
    timeout: float = Field(default=10.0, gt=0, le=300, strict=True, allow_inf_nan=False)


class Comparison(ConfigModel):
    """Judge the canary against the stable release on the same query over the step, as Kayenta's
    judge does: a one-sided Mann-Whitney U test at `confidence`, and the ratio of the medians
    beyond `tolerance`; both must hold to fail. Fewer than `min-samples` values on either side
    is inconclusive (Kayenta's advice is 50 or more)."""

    direction: Literal["higher-is-worse", "lower-is-worse"] = "higher-is-worse"
    tolerance: float = Field(default=1.1, ge=1, allow_inf_nan=False)  # allowed ratio of medians
    confidence: float = Field(default=0.98, gt=0.5, lt=1, allow_inf_nan=False)
    min_samples: int = Field(default=10, ge=3, le=100_000, strict=True)
    resolution: str = "10s"  # the step of the range query the samples come from

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        parse_duration(value)
        return value


class MetricCheck(ConfigModel):
    """One measured query: passes within its bounds (every check has max or min). No data, NaN or
    an infinity is inconclusive, a failed query an error: neither is ever a pass. With `compare`,
    the query is also judged against the stable release at the end of each rollout step."""

    name: CheckName
    query: str = Field(min_length=1, max_length=10_000)
    max: Finite | None = None
    min: Finite | None = None
    compare: Comparison | None = None

    @field_validator("query")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        problem = template_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _bounded(self) -> MetricCheck:
        if self.max is None and self.min is None:
            why = "a first rollout has no stable release to compare with" if self.compare else "it would judge nothing"
            raise ValueError(f"check {self.name}: give max or min ({why})")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"check {self.name}: min {self.min} is above max {self.max}")
        return self


class AnalysisConfig(ConfigModel):
    """Measure the release after its deploy succeeded: every `interval`, every check, `count`
    times. More than `failure-limit` failed or `inconclusive-limit` inconclusive measurements, or
    more than `consecutive-error-limit` query errors in a row, fail the analysis."""

    provider: str
    interval: str = "1m"
    count: int = Field(default=5, ge=1, le=1000, strict=True)
    failure_limit: int = Field(default=0, ge=0, strict=True)
    inconclusive_limit: int = Field(default=0, ge=0, strict=True)
    consecutive_error_limit: int = Field(default=4, ge=0, strict=True)
    checks: list[MetricCheck] = Field(min_length=1)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        interval = parse_duration(value)
        if not timedelta(seconds=1) <= interval <= timedelta(hours=1):
            raise ValueError("interval: between 1s and 1h")
        return value

    @field_validator("checks")
    @classmethod
    def _unique(cls, value: list[MetricCheck]) -> list[MetricCheck]:
        names = [check.name for check in value]
        if len(set(names)) != len(names):
            raise ValueError("check names must be unique")
        return value


class OnFailureConfig(ConfigModel):
    """What a failed analysis does besides failing the promotion."""

    rollback: bool = True  # back to the previous good release, signed, as `pipeline-kit rollback`
    kill_switches: list[CheckName] = Field(default_factory=list)  # flags turned off first


class FlagsConfig(ConfigModel):
    """Where kill switches live: a flagd flag file, or an Unleash server's admin API."""

    type: Literal["flagd", "unleash"]
    path: str | None = None  # flagd: the flag file, relative to the project
    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")  # unleash: the server
    project: str = "default"  # unleash project
    token_variable: EnvName = "UNLEASH_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret
    environments: dict[str, str] = Field(default_factory=dict)  # kit environment -> flag environment

    @model_validator(mode="after")
    def _where(self) -> FlagsConfig:
        if self.type == "flagd" and not self.path:
            raise ValueError("flagd needs path: (the flag file)")
        if self.type == "flagd" and self.path and (Path(self.path).is_absolute() or ".." in Path(self.path).parts):
            raise ValueError("path: a file inside the project")
        if self.type == "unleash" and not self.url:
            raise ValueError("unleash needs url: (the Unleash server)")
        return self


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
    on_failure: OnFailureConfig = OnFailureConfig()  # what a failed analysis does
    strategy: StrategyConfig | None = None  # canary or blue-green; none: all at once
    traffic: TrafficConfig | None = None  # how a strategy moves traffic

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


class LedgerConfig(ConfigModel):
    backend: Literal["file", "git"] = "file"
    path: str | None = None  # file backend; default <evidence dir>/ledger.jsonl
    remote: str = "origin"  # git backend
    ref: str = "refs/pipeline-kit/ledger"  # git backend
    # git backend over HTTPS: the variable holding a token that may push the ledger ref (sent as
    # an HTTP header through git's environment, never on a command line or in .git/config)
    token_variable: EnvName | None = None

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        if not value.startswith("refs/") or ".." in value or " " in value:
            raise ValueError("expected a git ref such as refs/pipeline-kit/ledger")
        return value


class ForgeConfig(ConfigModel):
    """Where promotions are recorded besides the ledger (deployments, statuses, attestations)."""

    type: Literal["auto", "github", "gitlab", "none"] = "auto"  # auto: the CI platform's own forge
    url: str | None = None  # API base; default from the CI context
    project: str | None = None  # owner/repo or GitLab project id; default from the CI context
    token_variable: str | None = None  # environment variable holding the token


def inside_project(paths: list[str]) -> list[str]:
    for path in paths:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"{path}: a path inside the project")
    return paths


class MigrationsConfig(ConfigModel):
    """Where the release's migrations are: files or directories inside the project (SQL, Alembic,
    Django, Rails), in the order the tools apply them. Classified at provenance time and signed
    with it."""

    paths: list[str] = Field(min_length=1)
    dialect: Literal["postgres", "mysql", "sqlite"] = "postgres"

    @field_validator("paths")
    @classmethod
    def _inside(cls, value: list[str]) -> list[str]:
        return inside_project(value)


class ContractsConfig(ConfigModel):
    """Consumer-driven contracts (Pact) between this service and its peers, judged by the
    contracts gate from signed evidence, without a broker."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)  # this service, as pacts name it
    # as a consumer: Pact files (or directories of *.json) in the project, recorded and signed with the release
    pacts: list[str] = Field(default_factory=list)
    # the services it calls or that call it: name (as pacts name it) -> project directory
    peers: dict[str, str] = Field(default_factory=dict)

    @field_validator("pacts")
    @classmethod
    def _inside(cls, value: list[str]) -> list[str]:
        return inside_project(value)


class Config(ConfigModel):
    version: Literal[1]
    artifact: ArtifactConfig
    sbom: SbomConfig = SbomConfig()
    signing: SigningConfig = SigningConfig()
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    ledger: LedgerConfig = LedgerConfig()
    forge: ForgeConfig = ForgeConfig()
    metrics: dict[str, MetricProviderConfig] = Field(default_factory=dict)
    flags: FlagsConfig | None = None
    migrations: MigrationsConfig | None = None
    contracts: ContractsConfig | None = None
    # Set by load_config: the file's sha256 (the promotion policy's digest) and path.
    source_sha256: str | None = Field(default=None, exclude=True)
    source_path: str | None = Field(default=None, exclude=True)

    @property
    def secret_variables(self) -> frozenset[str]:
        """Every variable the config names as holding a secret (a token, a header's value): the
        kit reads them, and no child process ever sees them."""
        names = {
            self.ledger.token_variable,
            self.forge.token_variable,
            self.flags.token_variable if self.flags else None,
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
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
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


MAX_EXPANDED_NODES = 100_000  # far beyond any real config; an alias bomb is far beyond this


def _node_counts(node: yaml.Node) -> tuple[int, int]:
    """How many nodes the document has as written, and once every alias is expanded (shared
    nodes counted once per reference), computed without expanding anything."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack: list[yaml.Node] = [node]
    while stack:  # post-order without recursion: nesting depth is the input's to choose
        current = stack.pop()
        if id(current) in sizes:
            continue
        sizes[id(current)] = -1
        order.append(current)
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            stack.extend(part for pair in current.value for part in pair)
    for current in reversed(order):
        children: list[yaml.Node] = []
        if isinstance(current, yaml.SequenceNode):
            children = list(current.value)
        elif isinstance(current, yaml.MappingNode):
            children = [part for pair in current.value for part in pair]
        sizes[id(current)] = min(MAX_EXPANDED_NODES + 1, 1 + sum(max(sizes[id(c)], 1) for c in children))
    return len(order), sizes[id(node)]


def parse_config(text: str, path: Path) -> Config:
    return parse_yaml(text, path, Config)


M = TypeVar("M", bound=BaseModel)


def parse_yaml(text: str, path: Path, model: type[M]) -> M:
    """A YAML file of ours (strict: no duplicate keys, no alias bombs) as `model`; every problem
    is one ConfigError naming the file, the line and the key."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        written, expanded = _node_counts(node) if node is not None else (0, 0)
        if expanded > MAX_EXPANDED_NODES:  # as written, or through aliases (an alias bomb)
            too_big = "has" if written > MAX_EXPANDED_NODES else "expands its YAML aliases to"
            raise ConfigError(path, None, f"the file {too_big} more than {MAX_EXPANDED_NODES:,} values: refused")
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else None
        raise ConfigError(path, where, f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {exc}") from exc
    if data is None:
        raise ConfigError(path, None, "file is empty; expected a mapping starting with `version: 1`")
    if not isinstance(data, dict):
        raise ConfigError(path, "line 1", f"expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc, problem = first_problem(exc)
        line = _line_of(text, loc)
        where = f"line {line}: {dotted(loc)}" if line else dotted(loc)
        raise ConfigError(path, where, problem) from exc


def config_error(path: Path, loc: Sequence[int | str], problem: str) -> ConfigError:
    """A ConfigError for a key found invalid after loading (e.g. gate options)."""
    try:
        line = _line_of(path.read_text(encoding="utf-8"), loc)
    except (OSError, yaml.YAMLError):
        line = None
    where = f"line {line}: {dotted(loc)}" if line else dotted(loc)
    return ConfigError(path, where, problem)


def _line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest YAML node along `loc` (only computed on errors)."""
    node: yaml.Node | None = yaml.compose(text, Loader=_Loader)
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return (key.start_mark.line + 1) if key else line
            key_node = next(k for k, v in node.value if v is match)
            line, node = key_node.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
