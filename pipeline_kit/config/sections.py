"""The sections beside the environments: artifact, sbom, signing, flags, ledger, org, forge,
migrations, contracts and annotations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from pipeline_kit.config.base import ConfigModel, EnvName, SentVariable, inside_project, sent_safely
from pipeline_kit.digest import output_glob_problem

# The SBOM source kinds a config may name; pipeline_kit.sbom registers one reader for each.
SbomSourceType = Literal["requirements", "poetry", "uv", "pipfile", "pylock", "environment", "npm", "go", "cargo"]


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
    # the workflow of the repository that ran the signing (a reusable workflow's caller), with its
    # ref: a full match of a workflow certificate's Build Config URI
    caller_regex: str | None = None

    @field_validator("san_regex", "caller_regex")
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


class FlagsConfig(ConfigModel):
    """Where kill switches live: a flagd flag file, or an Unleash server's admin API."""

    type: Literal["flagd", "unleash"]
    path: str | None = None  # flagd: the flag file, relative to the project
    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")  # unleash: the server
    project: str = "default"  # unleash project
    token_variable: SentVariable = "UNLEASH_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret
    environments: dict[str, str] = Field(default_factory=dict)  # kit environment -> flag environment

    @model_validator(mode="after")
    def _where(self) -> FlagsConfig:
        if self.type == "flagd" and not self.path:
            raise ValueError("flagd needs path: (the flag file)")
        if self.type == "flagd" and self.path and (Path(self.path).is_absolute() or ".." in Path(self.path).parts):
            raise ValueError("path: a file inside the project")
        if self.type == "unleash" and not self.url:
            raise ValueError("unleash needs url: (the Unleash server)")
        if self.type == "unleash":
            sent_safely(self.url, self.token_variable)
        return self


def _git_ref(value: str) -> str:
    if not value.startswith("refs/") or ".." in value or " " in value:
        raise ValueError("expected a git ref such as refs/pipeline-kit/ledger")
    return value


def _git_remote(value: str) -> str:
    """A remote whose http(s) URL carries no user-info: a token there would be on git's command
    line and in every message naming the ledger (token-variable sends it in a header instead)."""
    if re.match(r"(?i)https?://[^/]*@", value):
        raise ValueError("credentials in the URL: name the variable holding the token in token-variable")
    return value


# A ref of a git ledger, and the remote it is pushed to (validated where a config names them)
GitRef = Annotated[str, AfterValidator(_git_ref)]
GitRemote = Annotated[str, AfterValidator(_git_remote)]


class LedgerConfig(ConfigModel):
    backend: Literal["file", "git"] = "file"
    path: str | None = None  # file backend; default <evidence dir>/ledger.jsonl
    remote: GitRemote = "origin"  # git backend
    ref: GitRef = "refs/pipeline-kit/ledger"  # git backend
    # git backend over HTTPS: the variable holding a token that may push the ledger ref (sent as
    # an HTTP header through git's environment, never on a command line or in .git/config)
    token_variable: SentVariable | None = None


class OrgLedgerConfig(ConfigModel):
    """Where the org's stop-the-line statements live: a ref of a git repository every project
    names (a URL, or a remote of the project's checkout)."""

    remote: GitRemote = Field(min_length=1)
    ref: GitRef = "refs/pipeline-kit/stop-the-line"
    token_variable: SentVariable | None = None  # as ledger.token-variable, for this remote


class OrgRoleConfig(ConfigModel):
    """Who may sign one kind of statement: an identity policy of its own."""

    identity: IdentityConfig


class OrgConfig(ConfigModel):
    """The org-wide stop-the-line switch (docs/stop-the-line.md): where it lives, who may stop
    the line and who may resume it (stop may be wider than resume)."""

    ledger: OrgLedgerConfig
    stop: OrgRoleConfig
    resume: OrgRoleConfig


class ForgeConfig(ConfigModel):
    """Where promotions are recorded besides the ledger (deployments, statuses, attestations)."""

    type: Literal["auto", "github", "gitlab", "none"] = "auto"  # auto: the CI platform's own forge
    url: str | None = None  # API base; default from the CI context
    project: str | None = None  # owner/repo or GitLab project id; default from the CI context
    token_variable: SentVariable | None = None  # environment variable holding the token

    @model_validator(mode="after")
    def _secret_sent_safely(self) -> ForgeConfig:
        sent_safely(self.url, self.token_variable)
        return self


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


class AnnotationsConfig(ConfigModel):
    """Where every arrival, rollback and rollout step is published as metrics for dashboards to
    overlay: a Prometheus Pushgateway (docs/dashboards.md). Publishing is best effort: a failure
    is said, never blocks a promotion."""

    url: str = Field(pattern=r"^https?://[^\s]+$")
    job: str = Field(default="pipeline-kit", pattern=r"^[A-Za-z_][A-Za-z0-9_:.-]*$", max_length=100)
    token_variable: SentVariable | None = None  # bearer token, read from this variable
    ca_file: str | None = None  # PEM bundle to verify an https Pushgateway with
    # seconds per push, in all: a number, finite, at most a minute (a promotion waits for it)
    timeout: float = Field(default=5.0, gt=0, le=60, strict=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _secret_sent_safely(self) -> AnnotationsConfig:
        sent_safely(self.url, self.token_variable)
        return self
