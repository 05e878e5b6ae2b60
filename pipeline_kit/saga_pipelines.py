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

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from pipeline_kit import __version__
from pipeline_kit.ci.gitlab import SUMMARY_FILE
from pipeline_kit.config import ENVIRONMENT_NAME
from pipeline_kit.errors import ConfigError, UsageError
from pipeline_kit.evidence import DEFAULT_DIR_NAME
from pipeline_kit.release_plan import LoadedPlan, PlanStep, ReleasePlan

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
    evidence: tuple[str, ...] = ()  # the services whose evidence (their build's signed release) it reads


# Why a ledger must name its `token-variable` when an emitted pipeline pushes it (the checkout
# keeps no credentials that may push): GitHub with --ledger-in-repository, every ledger (the job's
# own token is put in it, whatever the remote); GitHub otherwise, and GitLab, every ledger pushed
# over HTTPS (a repository secret by that name is put in it; GitLab's job token cannot push).
_TOKEN_NEEDED = {
    ("github", True): "missing: with --ledger-in-repository the job's token is passed in it (say GITHUB_TOKEN)",
    ("github", False): "missing: the jobs cannot push over HTTPS without a token; name the repository secret "
    "holding one that may push (or use --ledger-in-repository for refs of this repository)",
    ("gitlab", False): "missing: GitLab's job token cannot push the ledger ref; name the masked CI/CD variable "
    "holding a project access token with write_repository",
}


def require_shared_ledgers(
    loaded: LoadedPlan, platform: Literal["github", "gitlab"], *, in_repository: bool = False
) -> tuple[str, ...]:
    """Refuse a plan whose ledger, or a step's service ledger, is not the `git` backend: each job
    runs in a workspace of its own, so a file ledger would be a different, empty one in every job
    (the saga, what each step did and what to roll back to would be lost between jobs). Each
    ledger the jobs push must name its `token-variable` (see _TOKEN_NEEDED). Returns those
    variables' names."""
    ledgers = [(loaded.path, loaded.plan.ledger, "every job needs one ledger")]
    for step in loaded.plan.steps:
        ledger = loaded.configs[step.service].ledger
        ledgers.append((loaded.config_path(step), ledger, f"the {step.service} jobs need one ledger"))
    for path, ledger, why in ledgers:
        if ledger.backend != "git":
            raise ConfigError(
                path,
                "ledger.backend",
                f"{ledger.backend}: {why} (backend: git)",
                hint="ledger: {backend: git, ref: refs/pipeline-kit/<name>}: a ref every job fetches and pushes",
            )
    for path, ledger, _ in ledgers:
        over_https = ledger.remote == "origin" or ledger.remote.startswith(("https://", "http://"))
        if (over_https or in_repository) and not ledger.token_variable:
            raise ConfigError(path, "ledger.token-variable", _TOKEN_NEEDED[platform, in_repository])
    return tuple(sorted({ledger.token_variable for _, ledger, _ in ledgers if ledger.token_variable}))


def require_environment(loaded: LoadedPlan, environment: str) -> None:
    """Refuse an environment a step's service does not have: its job would fail only when run."""
    for step in loaded.plan.steps:
        known = loaded.configs[step.service].environments
        if environment not in known:
            raise ConfigError(
                loaded.config_path(step), "environments", f"no environment {environment!r} (has: {', '.join(known)})"
            )


# What each platform evaluates wherever it stands in the file, a `run:` or `script:` line included,
# before any shell quoting applies: GitHub's expressions and GitLab's inputs.
_EVALUATED = re.compile(r"\$\{\{|\$\[\[")


def _literal(value: str, what: str) -> str:
    """`value`, refused when the emitted file would not carry it as written: an expression the
    platform evaluates, or a line break (in the header's comment it would start YAML of its own)."""
    if _EVALUATED.search(value) or any(not c.isprintable() for c in value):
        raise UsageError(f"{what} {value!r}: no line break, `${{{{` or `$[[` in what an emitted pipeline carries")
    return value


def jobs(plan: ReleasePlan, environment: str, plan_file: str, job_environment: str) -> list[Job]:
    """The plan's jobs, in an order where each comes after what it needs."""
    if not ENVIRONMENT_NAME.fullmatch(environment):
        raise UsageError(f"--to {environment!r}: not an environment name (lowercase letters, digits, - and _)")
    _literal(plan_file, "the plan's path")
    _literal(job_environment, "--job-environment")
    for step in plan.steps:
        _literal(step.path, f"steps.{step.service}.path")
    where = ("-f", plan_file, "--to", environment)
    steps = plan.order()
    step_jobs = [f"release-{step.service}" for step in steps]
    result = [Job("release-start", ("release", "start", *where), (), "success", None, False)]
    for step in steps:
        needs = ("release-start", *(f"release-{need}" for need in step.needs))
        scope = job_environment.format(environment=environment, service=step.service)
        result.append(
            Job(
                f"release-{step.service}",
                ("release", "step", step.service, *where),
                needs,
                "success",
                scope,
                True,
                (step.service,),
            )
        )
    compensations = []
    for step in reversed(steps):  # a step's dependents come later in the order: compensated first
        scope = job_environment.format(environment=environment, service=step.service)
        dependents = tuple(f"compensate-{s.service}" for s in steps if step.service in s.needs)
        args = ("release", "compensate", step.service, *where)
        compensations.append(
            Job(f"compensate-{step.service}", args, (*step_jobs, *dependents), "failure", scope, True, (step.service,))
        )
    finish = Job(
        "release-finish",
        ("release", "finish", *where),
        (*step_jobs, *(j.name for j in compensations)),
        "always",
        None,
        True,
        tuple(step.service for step in steps),
    )
    return [*result, *compensations, finish]


@dataclass(frozen=True)
class EvidenceSource:
    """Where the emitted jobs take each service's evidence (its build and sign left it: the
    `.pipeline-kit/` directory with release.json, bundles/, releases/<id>/), `{service}` filled in:
    GitHub, the artifact by that name (of this run, or of the run the `evidence-run-id` input
    names); GitLab, that job of the parent pipeline. `None`: from the checkout (committed)."""

    github_artifact: str | None = "evidence-{service}"
    gitlab_job: str | None = "{service}-sign"

    def pattern(self, platform: Literal["github", "gitlab"]) -> str | None:
        return self.github_artifact if platform == "github" else self.gitlab_job


COMMITTED = EvidenceSource(None, None)


def evidence_comment(source: EvidenceSource, platform: Literal["github", "gitlab"]) -> str:
    """The emitted file's account of what each job reads (the header)."""
    pattern = source.pattern(platform)
    if pattern is None:
        taken = "from the checkout: commit the evidence on the ref this runs from"
    elif platform == "github":
        taken = (
            f"from the artifact {pattern} (of this run, or of the run given as evidence-run-id), "
            "downloaded outside the checkout; only the evidence directory is taken from it"
        )
    else:
        taken = (
            f"from the artifacts of the parent pipeline's job {pattern} (needs: pipeline: $PARENT_PIPELINE_ID, "
            "which the trigger job passes: variables: {PARENT_PIPELINE_ID: $CI_PIPELINE_ID}), extracted at their paths"
        )
    return (
        "# Each job runs in a workspace of its own, with the ledgers (git refs every job reaches).\n"
        "# release-<service> and compensate-<service> read that service's evidence (<service>/.pipeline-kit/:\n"
        "# release.json, bundles/, releases/<id>/), release-finish every service's, " + taken + ".\n"
        "# Nothing taken decides by itself: every file is verified against the identity policy.\n"
        "# A deploy command gets the digest (PIPELINE_KIT_DIGEST): fetch the artifact by it.\n"
        "# release-finish writes the signed summary to .pipeline-kit/release-plan.<env>.sigstore.json.\n"
    )


def evidence_directory(plan_file: str, step: PlanStep) -> str:
    """A service's evidence directory, relative to where the pipeline runs (the plan's directory
    joined with the step's path, which the plan keeps inside it)."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(plan_file), step.path, DEFAULT_DIR_NAME))


def _command(args: tuple[str, ...]) -> str:
    return shlex.join(("pipeline-kit", *args))


class _Reference(list[str]):
    """GitLab's `!reference [job, key]`."""


def _represent_reference(dumper: yaml.SafeDumper, value: _Reference) -> yaml.Node:
    return dumper.represent_sequence("!reference", list(value), flow_style=True)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a file people read: no &id001 anchors for values written twice


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
    evidence: EvidenceSource = EvidenceSource(),
) -> str:
    """A child pipeline (for `trigger: include: artifact:`). The kit is installed in every job by
    the kit's own install step (`install`, `requirements` and `python` as the templates take them),
    included from the kit's project at this version, or from `templates` (a path in the project)."""
    listed = jobs(plan, environment, plan_file, job_environment)
    pattern = evidence.pattern("gitlab")
    crowded = [job.name for job in listed if len(job.needs) + bool(pattern) * len(job.evidence) > GITLAB_MAX_NEEDS]
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
        # the evidence, from the parent pipeline's jobs that signed it
        fetched = (
            [
                {"pipeline": "$PARENT_PIPELINE_ID", "job": pattern.format(service=s), "artifacts": True}
                for s in job.evidence
            ]
            if pattern
            else []
        )
        if job.needs or fetched:
            entry["needs"] = [*job.needs, *fetched]
        if job.needs:
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
    header += evidence_comment(evidence, "gitlab")
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
    evidence: EvidenceSource = EvidenceSource(),
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
    pattern = evidence.pattern("github")
    run_input = {
        "description": "The run whose artifacts hold the services' evidence. Empty: this run.",
        "type": "string",
        "required": False,
        "default": "",
    }
    workflow: dict[str, Any] = {
        "name": f"release plan to {environment}",
        # run by hand, or called after the jobs that build and sign the services
        "on": {
            "workflow_dispatch": {"inputs": {"evidence-run-id": run_input}},
            "workflow_call": {"inputs": {"evidence-run-id": run_input}},
        }
        if pattern
        else {"workflow_dispatch": None},
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
        taken = [step for step in plan.steps if step.service in job.evidence] if pattern else []
        entry["permissions"] = {
            "contents": contents,
            **({"actions": "read"} if taken else {}),  # to download another run's artifacts
            **({"id-token": "write"} if job.signs else {}),
        }
        kit_step: dict[str, Any] = {"run": _command(job.args)}
        if token_variables:  # the job's token for refs of this repository, else the secret so named
            kit_step["env"] = {
                name: "${{ github.token }}" if ledger_in_repository else f"${{{{ secrets.{name} }}}}"
                for name in token_variables
            }
        entry["steps"] = [
            {"uses": CHECKOUT, "with": {"persist-credentials": False}},
            {"uses": f"{KIT_REPOSITORY}/actions/setup@{kit_commit}"},
            *(s for step in taken for s in _take_evidence(str(pattern), step, plan_file)),
            kit_step,
        ]
        workflow["jobs"][job.name] = entry
    header = f"# Generated by pipeline-kit {__version__} (release emit --github) from {plan_file}: do not edit.\n"
    header += evidence_comment(evidence, "github")
    return header + yaml.dump(workflow, Dumper=_Dumper, sort_keys=False, width=1000).replace("'on':", "on:", 1)


# actions/download-artifact, pinned as in the examples (a test keeps them equal)
DOWNLOAD_ARTIFACT = "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093"  # v4.3.0

# An artifact is written by a job that may have run user code (the build), so it is downloaded
# outside the checkout and only the evidence directory is taken from it: nothing of it may land
# on the project's config, scripts or the plan (the evidence decides nothing until verified).
TAKE_EVIDENCE = """\
set -euo pipefail
if [ -L "$FROM" ] || [ -n "$(find "$FROM" ! -type f ! -type d -print -quit)" ]; then
  echo "::error::the artifact $ARTIFACT holds something that is neither a file nor a directory"
  exit 1
fi
rm -rf "$TO" && mkdir -p "$(dirname "$TO")" && cp -R "$FROM" "$TO"
"""


def _take_evidence(pattern: str, step: PlanStep, plan_file: str) -> list[dict[str, Any]]:
    """The steps that put `step`'s evidence, from its artifact, in its evidence directory."""
    artifact = pattern.format(service=step.service)
    downloaded = f"${{{{ runner.temp }}}}/evidence/{step.service}"
    return [
        {
            "uses": DOWNLOAD_ARTIFACT,
            "with": {
                "name": artifact,
                "path": downloaded,
                "run-id": "${{ inputs.evidence-run-id || github.run_id }}",
                "github-token": "${{ github.token }}",
            },
        },
        {
            "name": f"Take {step.service}'s evidence, and nothing else",
            "shell": "bash",
            "env": {"ARTIFACT": artifact, "FROM": downloaded, "TO": evidence_directory(plan_file, step)},
            "run": TAKE_EVIDENCE,
        },
    ]
