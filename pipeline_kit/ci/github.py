"""GitHub Actions: the run described from its default `GITHUB_*` / `RUNNER_*` variables."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from pipeline_kit import __version__
from pipeline_kit.ci.interface import CIContext, CIPlatform, Reporter, SignerIdentity, pick
from pipeline_kit.errors import UsageError

ISSUER = "https://token.actions.githubusercontent.com"


def split_workflow_ref(workflow_ref: str, repository: str) -> tuple[str, str]:
    """`acme/hello/.github/workflows/ci.yml@refs/heads/main` -> (`.github/workflows/ci.yml`, ref).

    Only the first `@` separates: a ref may itself contain `@`.
    """
    rest = workflow_ref.removeprefix(f"{repository}/")
    path, _, ref = rest.partition("@")
    return path, ref


class GitHubReporter(Reporter):
    def __init__(self, env: Mapping[str, str]) -> None:
        self.output_file = env.get("GITHUB_OUTPUT")
        self.summary_file = env.get("GITHUB_STEP_SUMMARY")

    def outputs(self, values: Mapping[str, str]) -> None:
        if not self.output_file:
            return
        with open(self.output_file, "a", encoding="utf-8") as handle:
            for name, value in values.items():
                if "\n" in value or "\r" in value:
                    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"  # cannot occur in the value
                    handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
                else:
                    handle.write(f"{name}={value}\n")

    def summary(self, markdown: str) -> None:
        if self.summary_file:
            with open(self.summary_file, "a", encoding="utf-8") as handle:
                handle.write(markdown.rstrip("\n") + "\n\n")

    def error_line(self, message: str, file: str | None = None) -> str:
        location = f" file={_escape_property(file)}" if file else ""
        return f"::error{location}::{_escape_data(message)}"

    def mask(self, secret: str) -> str | None:
        return f"::add-mask::{secret}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


BUILDER_VARIABLE = "PIPELINE_KIT_BUILDER_ID"


class GitHubActions(CIPlatform):
    name = "github"

    @staticmethod
    def detects(env: Mapping[str, str]) -> bool:
        return env.get("GITHUB_ACTIONS") == "true"

    def context(self, env: Mapping[str, str], workdir: Path) -> CIContext:
        missing = [v for v in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA") if not env.get(v)]
        if missing:
            raise UsageError(f"GitHub Actions detected but {', '.join(missing)} is not set")
        server = env["GITHUB_SERVER_URL"].rstrip("/")
        repository = env["GITHUB_REPOSITORY"]
        workflow_ref = env.get("GITHUB_WORKFLOW_REF", "")
        path, ref = split_workflow_ref(workflow_ref, repository)
        # The workflow that signs here: the caller's, or one of the kit's signing workflows, which
        # name themselves (a reusable workflow's own ref is in no variable GitHub sets; they read
        # it from their OIDC token's job_workflow_ref)
        signing = env.get(BUILDER_VARIABLE, "").strip() or (f"{server}/{workflow_ref}" if workflow_ref else "")
        run = f"{server}/{repository}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
        attempts = f"{run}/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
        builder_version = {"pipeline-kit": __version__}
        if env.get("ImageVersion"):
            builder_version["runner-image"] = env["ImageVersion"]
        token_source = (
            "GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL)"
            if env.get("ACTIONS_ID_TOKEN_REQUEST_URL")
            else "none: the job needs `permissions: id-token: write`"
        )
        return CIContext(
            platform="github",
            repository=f"{server}/{repository}",
            commit=env["GITHUB_SHA"],
            ref=env.get("GITHUB_REF") or None,
            actor=env.get("GITHUB_ACTOR") or None,
            builder_id=signing or f"{server}/{repository}",
            invocation_uri=attempts if env.get("GITHUB_RUN_ID") else None,
            started_on=None,
            builder_version=builder_version,
            external_parameters={
                "workflow": {"ref": ref, "repository": f"{server}/{repository}", "path": path},
            },
            internal_parameters={
                "github": pick(
                    env,
                    (
                        ("event_name", "GITHUB_EVENT_NAME"),
                        ("repository_id", "GITHUB_REPOSITORY_ID"),
                        ("repository_owner_id", "GITHUB_REPOSITORY_OWNER_ID"),
                        ("actor_id", "GITHUB_ACTOR_ID"),
                        ("runner_environment", "RUNNER_ENVIRONMENT"),
                        ("runner_os", "RUNNER_OS"),
                        ("runner_arch", "RUNNER_ARCH"),
                    ),
                )
            },
            signer=SignerIdentity(
                issuer=ISSUER,
                san=signing,
                token_source=token_source,
                source=f"{server}/{repository}",
                caller=f"{server}/{workflow_ref}" if workflow_ref else None,
                note=(
                    "a reusable workflow signs as its own ref (job_workflow_ref), not the caller's GITHUB_WORKFLOW_REF"
                ),
            )
            if signing
            else None,
        )

    def reporter(self, env: Mapping[str, str], workdir: Path) -> Reporter:
        return GitHubReporter(env)
