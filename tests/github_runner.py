"""What GitHub's runner does about OIDC, which nektos/act does not: hand the job token request pair
to the jobs granted `id-token: write`, and only to them.

On GitHub, the steps of a job whose effective permissions include `id-token: write` find
`ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN` in their environment; with them
any process of the job can ask for an OIDC token for any audience (audience `sigstore` gets a
Fulcio certificate). The token names the job's workflow file: `job_workflow_ref` is
`<owner>/<repo>/<path of the file that defines the job>@<ref>` (for a job of a reusable workflow,
the reusable workflow's file and the ref it was called at), while `repository`, `ref`, `sha` and
`workflow_ref` stay the run's (the caller's). act 0.2.89 has no OIDC at all. Here:

    grant_id_tokens(repo / ".github/workflows/release.yml", sigstore,
                    repository="acme/app", defined_in="acme/app/.github/workflows/release.yml",
                    ref="refs/tags/v1.0.0", sha=head)

rewrites that file (a test's copy) so that each job GitHub would grant gets a job-level `env:`
with a pair from `LocalSigstore.github_job(...)` (tests/sigstore_instance), whose tokens carry
GitHub's claims for that job. For a reusable workflow, `called_workflows(caller)` lists what each
`uses:` job of the caller calls, with the caller job's permissions and ref, and

    for call in called_workflows(caller, repository="acme/app", ref="refs/tags/v1.0.0"):
        grant_id_tokens(test_copy_of(call.defined_in), sigstore, repository="acme/app",
                        defined_in=call.defined_in, called_at=call.ref, ref=..., sha=...,
                        caller_permissions=call.permissions,
                        workflow_ref="acme/app/.github/workflows/ci.yml@refs/tags/v1.0.0")

grants the called workflow's jobs as GitHub would for that caller. act runs a local called
workflow (`uses: ./.github/workflows/x.yml`) from the repository's working tree, and a remote one
(`uses: owner/repo/path@ref`) from the directory `--local-repository owner/repo@ref=DIR` maps it
to, working tree too: grant the file there. `run_act` runs act as tests/test_signing_isolation.py
does (host mode, offline, no identity token of its own).

Reproduced (GitHub's documented behaviour):
- Effective permissions: a job's `permissions:` replace the workflow's; without either, the
  repository's default, which never includes `id-token` (permissive or restricted default
  alike). `write-all` grants `id-token: write`; `read-all` and `{}` do not (id-token is write or
  nothing). Naming some scopes sets every other one to none.
- Reusable workflows: a called job without `permissions` (and no workflow-level ones in the called
  file) inherits the caller job's; a called job may only keep or lower them. A called job asking
  for more than the caller job has makes GitHub reject the whole run before any job starts ("The
  workflow is not valid. ... The nested job 'X' is requesting 'id-token: write', but is only
  allowed 'id-token: none'."): `WorkflowNotValid` here, with that message.
- One request token per job, valid for that job's URL only, for tokens of any audience; the
  token's claims are GitHub's (sub, aud, repository, repository_owner, ref, sha, workflow_ref,
  job_workflow_ref, job_workflow_sha, runner_environment, ...); `environment` (a job's
  `environment:` name) changes `sub` to `repo:<repository>:environment:<name>`.
- Jobs that call a workflow (`jobs.X.uses`) run no steps and get nothing themselves.

Not reproduced:
- The pair is a job-level `env:` entry, so `${{ env.ACTIONS_ID_TOKEN_REQUEST_URL }}` sees it (on
  GitHub the runner adds it to the step processes only, outside the `env` context); every step
  of the job gets it, which is what GitHub does too.
- Isolation between jobs: GitHub runs each job on a fresh VM, act (host mode) runs them as
  processes of one user on one machine, so a process could read another job's /proc. The test
  attacker (tests/assets/harvest.py) only walks its own ancestors up to the runner process (act;
  Runner.Worker on GitHub), which is what it could do on GitHub; this module trusts act to run
  each job as its own processes.
- The request token stays valid for the whole test session (GitHub's expires with the job) unless
  the test calls `LocalSigstore.end_github_job`; matrix instances of a job share one pair (GitHub
  gives each its own); nested reusable workflows (a called workflow calling another) are capped
  by the direct caller only; `permissions` under `if:`/expressions are taken literally; the
  issuer is the local instance's, not https://token.actions.githubusercontent.com; act itself
  ignores `permissions:` entirely (this module is the only place they mean anything), and sets
  no GITHUB_WORKFLOW_REF/GITHUB_WORKFLOW_SHA (GitHub does; the token's claims are right).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.sigstore_instance import LocalSigstore

# The GITHUB_TOKEN scopes a `permissions:` block can name (GitHub's reference, 2025).
SCOPES = (
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
)
LEVELS = {"none": 0, "read": 1, "write": 2}
# A run's default without any `permissions:` (the permissive default; the restricted one grants
# less). id-token is none in both: a job never gets the pair without asking for it.
DEFAULT_PERMISSIONS: dict[str, str] = dict.fromkeys(SCOPES, "write") | {"id-token": "none", "models": "read"}
BIN = Path(sys.executable).parent  # the test venv: act, python with sigstore
ID_TOKEN_VARIABLES = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")


class WorkflowNotValid(Exception):
    """GitHub refuses to start the run (a called job asks for more than its caller has)."""


# -- YAML that keeps `on:` a key named "on" ------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans only: `on`, `off`, `yes`, `no` stay strings, as GitHub reads them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (run: scripts) as literal blocks."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def load_workflow(path: Path) -> dict[str, Any]:
    workflow = yaml.load(path.read_text(), Loader=_Loader)
    if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
        raise ValueError(f"{path}: not a workflow (no jobs)")
    return workflow


def dump_workflow(workflow: Mapping[str, Any], path: Path) -> None:
    path.write_text(yaml.dump(dict(workflow), Dumper=_Dumper, sort_keys=False, width=1 << 16))


# -- permissions ---------------------------------------------------------------------------------
def permissions(block: Any) -> dict[str, str] | None:
    """A `permissions:` value as scope -> level for every scope; None when it is absent."""
    if block is None:
        return None
    if block == "write-all":
        return dict.fromkeys(SCOPES, "write")
    if block == "read-all":  # id-token is write or nothing: read-all does not grant it
        return dict.fromkeys(SCOPES, "read") | {"id-token": "none"}
    if not isinstance(block, dict):
        raise ValueError(f"permissions: {block!r} is not write-all, read-all or a mapping")
    unknown = [scope for scope, level in block.items() if scope not in SCOPES or level not in LEVELS]
    if unknown:
        raise ValueError(f"permissions: unknown scope or level for {unknown}")
    named = {scope: str(level) for scope, level in block.items()}
    if named.get("id-token") == "read":
        named["id-token"] = "none"
    return dict.fromkeys(SCOPES, "none") | named


def exceeding(requested: Mapping[str, str], allowed: Mapping[str, str]) -> list[str]:
    """The scopes `requested` asks more of than `allowed` gives."""
    return [s for s in SCOPES if LEVELS[requested.get(s, "none")] > LEVELS[allowed.get(s, "none")]]


def effective_permissions(
    workflow: Mapping[str, Any], job_id: str, caller_permissions: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A job's GITHUB_TOKEN permissions: its own, else the workflow's, else (in a called workflow)
    the caller job's, else the default. In a called workflow, asking for more than the caller
    job has is GitHub's "workflow is not valid"."""
    job = workflow["jobs"][job_id]
    own = permissions(job.get("permissions"))
    if own is None:
        own = permissions(workflow.get("permissions"))
    if caller_permissions is None:
        return own if own is not None else dict(DEFAULT_PERMISSIONS)
    if own is None:
        return dict(caller_permissions)
    over = exceeding(own, caller_permissions)
    if over:
        asked = ", ".join(f"{s}: {own[s]}" for s in over)
        allowed = ", ".join(f"{s}: {caller_permissions.get(s, 'none')}" for s in over)
        raise WorkflowNotValid(f"The nested job '{job_id}' is requesting '{asked}', but is only allowed '{allowed}'.")
    return own


def grants_id_token(effective: Mapping[str, str]) -> bool:
    return effective.get("id-token") == "write"


# -- reusable workflows --------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """A caller job's `uses:` of a reusable workflow."""

    job: str  # the caller's job id
    defined_in: str  # owner/repo/path of the called workflow file
    ref: str  # the ref it is called at (what job_workflow_ref ends with)
    permissions: dict[str, str]  # the caller job's effective permissions: the called jobs' cap


def called_workflows(caller_file: Path, *, repository: str | None = None, ref: str | None = None) -> list[Call]:
    """What each `uses:` job of the workflow in `caller_file` calls, with the caller job's
    permissions. A local call (`./.github/workflows/x.yml`) is the caller's repository at the
    caller's commit: give `repository` and `ref` (the run's) for those."""
    workflow = load_workflow(caller_file)
    calls = []
    for job_id, job in workflow["jobs"].items():
        uses = job.get("uses")
        if not isinstance(uses, str):
            continue
        if uses.startswith("./"):
            if repository is None or ref is None:
                raise ValueError(f"job {job_id} calls the local {uses}: give the caller's repository and ref")
            defined_in, at = f"{repository}/{uses[2:]}", ref
        else:
            defined_in, _, at = uses.partition("@")
            if not at or defined_in.count("/") < 2:
                raise ValueError(f"job {job_id}: {uses!r} is not owner/repo/path@ref")
        calls.append(Call(job_id, defined_in, at, effective_permissions(workflow, job_id)))
    return calls


# -- the grant -----------------------------------------------------------------------------------
def _environment(job: Mapping[str, Any]) -> str | None:
    environment = job.get("environment")
    name = environment.get("name") if isinstance(environment, dict) else environment
    return str(name) if name and "${{" not in str(name) else None


def grant_id_tokens(
    workflow_file: Path,
    sigstore: LocalSigstore,
    *,
    repository: str,
    defined_in: str,
    ref: str,
    sha: str,
    caller_permissions: Mapping[str, str] | None = None,
    called_at: str | None = None,
    job_workflow_sha: str | None = None,
    workflow_ref: str | None = None,
    **claims: Any,
) -> dict[str, dict[str, str]]:
    """Rewrite `workflow_file` (a test's copy) as GitHub's runner would run it: every job with
    steps whose effective permissions include `id-token: write` gets the job's token request pair
    in a job-level `env:`. Returns job id -> the pair, for the jobs granted.

    repository, ref, sha: the run's (GITHUB_REPOSITORY, GITHUB_REF, GITHUB_SHA; the caller's for
    a reusable workflow). defined_in: owner/repo/path of this file. For a reusable workflow,
    caller_permissions and called_at come from `called_workflows` (Call.permissions, Call.ref),
    workflow_ref is the caller's top-level workflow (`owner/repo/path@ref`), and
    job_workflow_sha the called workflow's commit (default: called_at when it is a commit, else
    sha). Further keyword arguments are claims of `github_claims` (event_name, actor, ...)."""
    called = caller_permissions is not None or called_at is not None
    if called and workflow_ref is None:
        raise ValueError("a called workflow's tokens name the caller's workflow: give workflow_ref")
    at = called_at or ref
    job_workflow_ref = f"{defined_in}@{at}"
    if job_workflow_sha is None:
        job_workflow_sha = at if re.fullmatch(r"[0-9a-f]{40}", at) else sha
    workflow = load_workflow(workflow_file)
    if called and "workflow_call" not in _triggers(workflow):
        raise ValueError(f"{workflow_file}: called, but it has no `on: workflow_call`")
    granted: dict[str, dict[str, str]] = {}
    for job_id, job in workflow["jobs"].items():
        if "uses" in job:  # a caller job: its called workflow's jobs get their own pairs
            continue
        if not grants_id_token(effective_permissions(workflow, job_id, caller_permissions)):
            continue
        pair = sigstore.github_job(
            repository=repository,
            job_workflow_ref=job_workflow_ref,
            job_workflow_sha=job_workflow_sha,
            ref=ref,
            sha=sha,
            workflow_ref=workflow_ref or job_workflow_ref,
            environment=_environment(job),
            **claims,
        )
        job["env"] = {**(job.get("env") or {}), **pair}
        granted[job_id] = pair
    dump_workflow(workflow, workflow_file)
    return granted


def _triggers(workflow: Mapping[str, Any]) -> list[str]:
    on = workflow.get("on")
    if isinstance(on, str):
        return [on]
    return list(on or [])


# -- act -----------------------------------------------------------------------------------------
def run_act(
    repo: Path,
    scratch: Path,
    *,
    workflow: str,
    variables: Mapping[str, str],
    event: Path | None = None,
    extra: tuple[str, ...] = (),
    path: str | None = None,
    event_name: str = "push",
) -> subprocess.CompletedProcess[str]:
    """act (host mode, offline) running `workflow` of `repo` for `event_name`, with `variables` given
    to every step (`--env`), nothing of this process's CI environment, and no identity token
    unless `variables` names one: a job signs only with what `grant_id_tokens` gave it."""
    scratch.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "PIPELINE_KIT_"))}
    for name in (*ID_TOKEN_VARIABLES, "SIGSTORE_IDENTITY_TOKEN", "SIGSTORE_ID_TOKEN", "ACTIONS_RUNTIME_TOKEN"):
        env.pop(name, None)
    env.update({"HOME": str(scratch), "ACT_DISABLE_VERSION_CHECK": "1"})
    command = [str(BIN / "act"), event_name, "-W", workflow, "-P", "ubuntu-latest=-self-hosted"]
    command += ["--container-daemon-socket", "-", "--action-cache-path", str(scratch / "cache")]
    if event is not None:
        command += ["-e", str(event)]
    command += list(extra)
    for key, value in {**variables, **({"PATH": path} if path else {})}.items():
        command += ["--env", f"{key}={value}"]
    return subprocess.run(
        command, cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False
    )
