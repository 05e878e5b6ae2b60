"""GitLab CI: the job described from its predefined `CI_*` variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from pipeline_kit import __version__
from pipeline_kit.ci.interface import CIContext, CIPlatform, Reporter, SignerIdentity, pick
from pipeline_kit.errors import UsageError

SUMMARY_FILE = "pipeline-kit-summary.md"
_DOTENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Variables the kit reads as its own settings. A dotenv report sets its variables in every job
# that needs this one, over that job's own `variables:` (GitLab's precedence), so an output of
# such a name (build's evidence-dir: a path in this job's workspace) would redirect the next
# job's kit, the signing job's included. Never written to the report.
_KIT_SETTINGS = frozenset(
    {
        "PIPELINE_KIT_APART",
        "PIPELINE_KIT_CONFIG",
        "PIPELINE_KIT_DOTENV",
        "PIPELINE_KIT_EVIDENCE_DIR",
        "PIPELINE_KIT_SUMMARY",
        "PIPELINE_KIT_TRUST_CONFIG",
        "PIPELINE_KIT_VERBOSE",
        "PIPELINE_KIT_WORKDIR",
    }
)


def gitlab_ref(env: Mapping[str, str]) -> str | None:
    if env.get("CI_COMMIT_TAG"):
        return f"refs/tags/{env['CI_COMMIT_TAG']}"
    if env.get("CI_COMMIT_BRANCH"):
        return f"refs/heads/{env['CI_COMMIT_BRANCH']}"
    name = env.get("CI_COMMIT_REF_NAME")
    return f"refs/heads/{name}" if name else None


def config_ref_uri(env: Mapping[str, str]) -> str | None:
    """`ci_config_ref_uri` (host/group/project//path@ref): GitLab's signer identity.

    Newer GitLab sets CI_CONFIG_REF_URI; otherwise it is derived the way GitLab builds the claim.
    """
    if env.get("CI_CONFIG_REF_URI"):
        return env["CI_CONFIG_REF_URI"]
    host, project, ref = env.get("CI_SERVER_HOST"), env.get("CI_PROJECT_PATH"), gitlab_ref(env)
    if not (host and project and ref):
        return None
    return f"{host}/{project}//{env.get('CI_CONFIG_PATH') or '.gitlab-ci.yml'}@{ref}"


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class GitLabReporter(Reporter):
    def __init__(self, env: Mapping[str, str], workdir: Path) -> None:
        self.dotenv = workdir / env.get("PIPELINE_KIT_DOTENV", "pipeline-kit.env")
        # GitLab has no job summary: the Markdown (Mermaid diagrams included) goes to a file the
        # templates keep as an artifact; GitLab renders it wherever it shows Markdown
        self.summary_file = workdir / env.get("PIPELINE_KIT_SUMMARY", SUMMARY_FILE)

    def summary(self, markdown: str) -> None:
        with open(self.summary_file, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n\n")

    def outputs(self, values: Mapping[str, str]) -> None:
        lines = []
        for name, value in values.items():
            key = "PIPELINE_KIT_" + name.upper().replace("-", "_")
            if not _DOTENV_NAME.match(key):
                raise UsageError(f"output name {name!r} cannot be a dotenv variable")
            if key in _KIT_SETTINGS:
                continue
            # dotenv reports hold one line per variable: multi-line values keep their first line
            lines.append(f"{key}={value.splitlines()[0] if value else ''}\n")
        with open(self.dotenv, "a", encoding="utf-8") as handle:
            handle.writelines(lines)


class GitLabCI(CIPlatform):
    name = "gitlab"

    @staticmethod
    def detects(env: Mapping[str, str]) -> bool:
        return env.get("GITLAB_CI") == "true"

    def context(self, env: Mapping[str, str], workdir: Path) -> CIContext:
        missing = [v for v in ("CI_PROJECT_URL", "CI_COMMIT_SHA", "CI_SERVER_URL") if not env.get(v)]
        if missing:
            raise UsageError(f"GitLab CI detected but {', '.join(missing)} is not set")
        config_uri = config_ref_uri(env)
        builder_version = {"pipeline-kit": __version__}
        if env.get("CI_RUNNER_VERSION"):
            builder_version["gitlab-runner"] = env["CI_RUNNER_VERSION"]
        token_source = (
            "GitLab ID token (SIGSTORE_ID_TOKEN)"
            if env.get("SIGSTORE_ID_TOKEN")
            else "none: the job needs `id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore`"
        )
        return CIContext(
            platform="gitlab",
            repository=env["CI_PROJECT_URL"].rstrip("/"),
            commit=env["CI_COMMIT_SHA"],
            ref=gitlab_ref(env),
            actor=env.get("GITLAB_USER_LOGIN") or None,
            builder_id=f"https://{config_uri}" if config_uri else env["CI_PROJECT_URL"],
            invocation_uri=env.get("CI_JOB_URL") or None,
            started_on=_timestamp(env.get("CI_JOB_STARTED_AT")),
            builder_version=builder_version,
            external_parameters=pick(
                env,
                (
                    ("source", "CI_PROJECT_URL"),
                    ("entryPoint", "CI_JOB_NAME"),
                    ("configPath", "CI_CONFIG_PATH"),
                    ("pipelineSource", "CI_PIPELINE_SOURCE"),
                ),
            ),
            internal_parameters={
                "gitlab": pick(
                    env,
                    (
                        ("job_id", "CI_JOB_ID"),
                        ("pipeline_id", "CI_PIPELINE_ID"),
                        ("project_id", "CI_PROJECT_ID"),
                        ("namespace_id", "CI_PROJECT_NAMESPACE_ID"),
                        ("runner_id", "CI_RUNNER_ID"),
                        ("architecture", "CI_RUNNER_EXECUTABLE_ARCH"),
                    ),
                )
            },
            signer=SignerIdentity(
                issuer=env["CI_SERVER_URL"].rstrip("/"),
                san=f"https://{config_uri}",
                token_source=token_source,
                source=env["CI_PROJECT_URL"].rstrip("/"),
                caller=f"https://{config_uri}",
                note=("GitLab signs as the project's top-level CI config, never as an included component or template"),
            )
            if config_uri
            else None,
        )

    def reporter(self, env: Mapping[str, str], workdir: Path) -> Reporter:
        return GitLabReporter(env, workdir)
