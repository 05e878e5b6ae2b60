"""A release plan compiled into the CI platform's own DAG: a GitLab child pipeline or a GitHub
workflow in which every step is its own job, under its own environment's protection rules and
credentials, instead of one job that needs every service's deploy access.

The jobs, whatever the platform:
- `release-start` opens the saga in the plan's ledger;
- `release-<service>` promotes one service, after `release-start` and the steps it needs;
- `compensate-<service>` runs when something failed (on GitLab it always runs and finds nothing
  to do otherwise), after every step and after the compensations of the steps that need it (so
  the newest are undone first); a step that never completed has nothing to undo;
- `release-finish` always runs last: it records how the saga ended, signs its summary, and fails
  the pipeline when the saga failed.
Each job records what it did in the plan's ledger, so the ledger must be one every job reaches
(the `git` backend); a job run again finds its work done and does not repeat it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from pipeline_kit import __version__
from pipeline_kit.ci.gitlab import SUMMARY_FILE
from pipeline_kit.config import load_config
from pipeline_kit.errors import ConfigError, UsageError
from pipeline_kit.release_plan import LoadedPlan, ReleasePlan

KIT_REPOSITORY = "pipeline-kit/pipeline-kit"  # where the actions and templates come from
# actions/checkout, pinned as in the examples (a test keeps them equal)
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"  # v4.2.2
GITLAB_MAX_NEEDS = 50  # GitLab refuses a job with more


@dataclass(frozen=True)
class Job:
    name: str
    args: tuple[str, ...]  # the pipeline-kit command line
    needs: tuple[str, ...]
    when: Literal["success", "failure", "always"]
    environment: str | None  # the deployment environment the job runs under (its rules, its secrets)
    signs: bool  # needs an identity token


# Why a ledger must name its `token-variable` when an emitted pipeline pushes it: GitHub with
# --ledger-in-repository (the job's own token is put in it, whatever the remote), GitLab every
# ledger pushed over HTTPS (a job token cannot push).
_TOKEN_NEEDED = {
    "github": "missing: with --ledger-in-repository the job's token is passed in it (say GITHUB_TOKEN)",
    "gitlab": "missing: GitLab's job token cannot push the ledger ref; name the masked CI/CD variable "
    "holding a project access token with write_repository",
}


def require_shared_ledgers(
    loaded: LoadedPlan, *, pushed_by: Literal["github", "gitlab"] | None = None
) -> tuple[str, ...]:
    """Refuse a plan whose ledger, or a step's service ledger, is not the `git` backend: each job
    runs in a workspace of its own, so a file ledger would be a different, empty one in every job
    (the saga, what each step did and what to roll back to would be lost between jobs).

    `pushed_by` (the platform whose jobs push the ledgers with a token: see _TOKEN_NEEDED): each
    ledger it pushes must name its `token-variable`, since the checkout keeps no credentials that
    may push. Returns those variables' names."""
    ledgers = [(loaded.path, loaded.plan.ledger, "every job needs one ledger")]
    for step in loaded.plan.steps:
        path = loaded.directory(step) / "pipeline-kit.yml"
        ledgers.append((path, load_config(path).ledger, f"the {step.service} jobs need one ledger"))
    for path, ledger, why in ledgers:
        if ledger.backend != "git":
            raise ConfigError(path, "ledger.backend", f"{ledger.backend}: {why} (backend: git)")
    for path, ledger, _ in ledgers:
        over_https = ledger.remote == "origin" or ledger.remote.startswith(("https://", "http://"))
        if pushed_by and (over_https or pushed_by == "github") and not ledger.token_variable:
            raise ConfigError(path, "ledger.token-variable", _TOKEN_NEEDED[pushed_by])
    return tuple(sorted({ledger.token_variable for _, ledger, _ in ledgers if ledger.token_variable}))


def jobs(plan: ReleasePlan, environment: str, plan_file: str, job_environment: str) -> list[Job]:
    """The plan's jobs, in an order where each comes after what it needs."""
    where = ("-f", plan_file, "--to", environment)
    steps = plan.order()
    step_jobs = [f"release-{step.service}" for step in steps]
    result = [Job("release-start", ("release", "start", *where), (), "success", None, False)]
    for step in steps:
        needs = ("release-start", *(f"release-{need}" for need in step.needs))
        scope = job_environment.format(environment=environment, service=step.service)
        result.append(
            Job(f"release-{step.service}", ("release", "step", step.service, *where), needs, "success", scope, True)
        )
    compensations = []
    for step in reversed(steps):  # a step's dependents come later in the order: compensated first
        scope = job_environment.format(environment=environment, service=step.service)
        dependents = tuple(f"compensate-{s.service}" for s in steps if step.service in s.needs)
        args = ("release", "compensate", step.service, *where)
        compensations.append(Job(f"compensate-{step.service}", args, (*step_jobs, *dependents), "failure", scope, True))
    finish = Job(
        "release-finish",
        ("release", "finish", *where),
        (*step_jobs, *(j.name for j in compensations)),
        "always",
        None,
        True,
    )
    return [*result, *compensations, finish]


# What every emitted job needs besides the ledgers (git refs every job reaches): the jobs download
# nothing, so it must be in the checkout.
NEEDS_COMMENT = """\
# Each job runs in a workspace of its own. release-<service> and compensate-<service> read that
# service's evidence from the checkout, as its build and sign left it (<service>/.pipeline-kit/:
# release.json, bundles/, releases/<id>/), and the files its deploy command takes (its dist/);
# release-finish reads every promoted service's releases/<id>/ to sign the summary. These jobs
# download no artifact and `pipeline-kit init` git-ignores .pipeline-kit/: commit the evidence on
# the ref this runs from. release-finish writes the signed summary to
# .pipeline-kit/release-plan.<env>.sigstore.json in its own workspace.
"""


def _command(args: tuple[str, ...]) -> str:
    return shlex.join(("pipeline-kit", *args))


class _Reference(list[str]):
    """GitLab's `!reference [job, key]`."""


def _represent_reference(dumper: yaml.SafeDumper, value: _Reference) -> yaml.Node:
    return dumper.represent_sequence("!reference", list(value), flow_style=True)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Reference, _represent_reference)


def gitlab_pipeline(
    plan: ReleasePlan,
    environment: str,
    plan_file: str,
    *,
    job_environment: str = "{environment}",
    install: str | None = None,
    requirements: str | None = None,
    python: str | None = None,
    templates: str | None = None,
) -> str:
    """A child pipeline (for `trigger: include: artifact:`). The kit is installed in every job by
    the kit's own install step (`install`, `requirements` and `python` as the templates take them),
    included from the kit's project at this version, or from `templates` (a path in the project)."""
    listed = jobs(plan, environment, plan_file, job_environment)
    crowded = [job.name for job in listed if len(job.needs) > GITLAB_MAX_NEEDS]
    if crowded:
        raise UsageError(f"{crowded[0]} would need {GITLAB_MAX_NEEDS}+ jobs, more than GitLab allows: split the plan")
    include: dict[str, str] = (
        {"local": f"{templates.rstrip('/')}/install.yml"}
        if templates
        else {"project": KIT_REPOSITORY, "ref": f"v{__version__}", "file": "gitlab-templates/install.yml"}
    )
    variables = {
        name: value
        for name, value in (
            ("PIPELINE_KIT_INSTALL", install),
            ("PIPELINE_KIT_REQUIREMENTS", requirements),
            ("PIPELINE_KIT_PYTHON", python),
        )
        if value
    }
    document: dict[str, Any] = {"include": [include]}
    if variables:
        document["variables"] = variables
    document["stages"] = ["release", "compensate", "finish"]
    for job in listed:
        stage = {"success": "release", "failure": "compensate", "always": "finish"}[job.when]
        entry: dict[str, Any] = {"stage": stage}
        if job.needs:
            entry["needs"] = list(job.needs)
            # Every job after the first runs whatever happened before it: a job whose needs were
            # skipped is skipped too, even `when: always`, and stalls the stages after it. Each
            # job reads the saga in the ledger and does only what is left: a step after a failure
            # does nothing, a compensation undoes only a completed step of a failed saga.
            entry["when"] = "always"
        if job.environment:
            entry["environment"] = {"name": job.environment}
        if job.signs:
            entry["id_tokens"] = {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
        entry["script"] = [_Reference([".pipeline-kit-install", "script"]), _command(job.args)]
        # where the plan stands, drawn (GitLab has no job summary: a Markdown artifact)
        entry["artifacts"] = {"when": "always", "paths": [SUMMARY_FILE], "expire_in": "90 days"}
        document[job.name] = entry
    header = f"# Generated by pipeline-kit {__version__} (release emit --gitlab) from {plan_file}: do not edit.\n"
    header += NEEDS_COMMENT
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000)


def github_workflow(
    plan: ReleasePlan,
    environment: str,
    plan_file: str,
    *,
    kit_commit: str,
    job_environment: str = "{environment}",
    ledger_in_repository: bool = False,
    token_variables: tuple[str, ...] = (),
) -> str:
    """A workflow run by hand (`workflow_dispatch`), one job per step, the kit's setup action
    pinned to `kit_commit` (a tag can move). Jobs that sign get `id-token: write`; with the
    ledger in this repository (`ledger_in_repository`) every job may push to it (`contents: write`)
    with the job's token, passed to the kit in the ledgers' `token_variables` (the kit sends it
    through git's environment). The checkout never keeps credentials (`persist-credentials:
    false`): they would sit in `.git/config` for every later step and any uploaded workspace."""
    if not re.fullmatch(r"[0-9a-f]{40}", kit_commit):
        raise UsageError(f"--kit-commit {kit_commit!r}: pin the kit's actions to its release commit (40 hex digits)")
    listed = jobs(plan, environment, plan_file, job_environment)
    contents = "write" if ledger_in_repository else "read"
    workflow: dict[str, Any] = {
        "name": f"release plan to {environment}",
        "on": {"workflow_dispatch": None},
        "permissions": {},
        # one run of the plan at a time: the saga in the ledger is per environment
        "concurrency": {"group": f"release-plan-{environment}", "cancel-in-progress": False},
        "jobs": {},
    }
    for job in listed:
        entry: dict[str, Any] = {"runs-on": "ubuntu-latest"}
        if job.needs:
            entry["needs"] = list(job.needs)
        if job.when != "success":
            entry["if"] = "${{ failure() }}" if job.when == "failure" else "${{ always() }}"
        if job.environment:
            entry["environment"] = job.environment
        entry["permissions"] = {"contents": contents, **({"id-token": "write"} if job.signs else {})}
        kit_step: dict[str, Any] = {"run": _command(job.args)}
        if ledger_in_repository and token_variables:
            kit_step["env"] = dict.fromkeys(token_variables, "${{ github.token }}")
        entry["steps"] = [
            {"uses": CHECKOUT, "with": {"persist-credentials": False}},
            {"uses": f"{KIT_REPOSITORY}/actions/setup@{kit_commit}"},
            kit_step,
        ]
        workflow["jobs"][job.name] = entry
    header = f"# Generated by pipeline-kit {__version__} (release emit --github) from {plan_file}: do not edit.\n"
    header += NEEDS_COMMENT
    return header + yaml.dump(workflow, Dumper=_Dumper, sort_keys=False, width=1000).replace("'on':", "on:", 1)
