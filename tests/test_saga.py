"""Multi-service releases: a release plan applied as a saga over three real service projects,
each promoted, deployed and rolled back for real; a failing third step, a killed apply."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_kit import __version__
from tests.conftest import (
    EXAMPLE,
    REPOSITORY,
    SIGNER,
    Cli,
    Snapshots,
    another_release,
    describe,
    init_repo,
    job_env,
    killed_at,
    sign,
)
from tests.mermaid_parser import charts, github_summary
from tests.sigstore_instance import LocalSigstore

SERVICES = ("accounts", "orders", "web")
PLAN = """\
version: 1
steps:
  - {service: accounts, path: services/accounts}
  - {service: orders, path: services/orders, needs: [accounts]}
  - {service: web, path: services/web, needs: [orders]}
"""


# The saga of a plan whose third step (web) fails: the first two compensated, newest first.
THIRD_STEP_FAILED = [
    ("started", None),
    ("step-done", "accounts"),
    ("step-done", "orders"),
    ("step-failed", "web"),
    ("compensated", "orders"),
    ("compensated", "accounts"),
    ("failed", None),
]


def deployed(root: Path, service: str) -> list[str]:
    path = root / "services" / service / "deployed.txt"
    return path.read_text().split() if path.is_file() else []


def set_dev(project: Path, **settings: Any) -> None:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"].update(settings)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def in_dev_and_next(
    cli: Cli, project: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, policy: list[str]
) -> tuple[str, str]:
    """Build, sign and promote `project` to dev, then build and sign a newer release: (in dev, next)."""
    describe(cli, project)
    code, err = sign(cli, project, sigstore, monkeypatch)
    assert code == 0, err
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))
    assert cli(["promote", "--to", "dev", *policy], cwd=project).code == 0
    previous = json.loads((project / ".pipeline-kit" / "release.json").read_text())["id"]
    return previous, another_release(cli, project, sigstore, monkeypatch)


def make_services(
    root: Path,
    cli: Cli,
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
    remote: Path | None = None,
) -> dict[str, tuple[str, str]]:
    """Three services under `root`, each with a release promoted to dev (deployed.txt holds it)
    and a newer signed release ready; the plan beside them. Every ledger a file ledger, or with
    `remote` a ref of that git remote (as jobs of an emitted pipeline need). Returns service ->
    (previous, new)."""
    releases = {}
    for service in SERVICES:
        project = root / "services" / service
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
        set_dev(project, deploy='echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt')
        if remote is not None:
            set_ledger(project / "pipeline-kit.yml", remote, service)
        (project / ".gitignore").write_text("deployed.txt\n.pipeline-kit/\n.pipeline-kit-ledger/\ndist/\n")
        init_repo(project, remote=REPOSITORY + ".git")
        releases[service] = in_dev_and_next(cli, project, sigstore, monkeypatch, policy)
    plan = (
        PLAN if remote is None else PLAN + f"ledger: {{backend: git, remote: {remote}, ref: refs/pipeline-kit/saga}}\n"
    )
    (root / "release-plan.yml").write_text(plan)
    return releases


def set_ledger(config_path: Path, remote: Path, service: str) -> None:
    """The service's ledger: a ref of its own on the shared git remote."""
    config = yaml.safe_load(config_path.read_text())
    config["ledger"] = {"backend": "git", "remote": str(remote), "ref": f"refs/pipeline-kit/{service}"}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def services(
    tmp_path: Path,
    cli: Cli,
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
    snapshots: Snapshots,
) -> tuple[Path, dict[str, tuple[str, str]]]:
    """Three services with file ledgers and the plan beside them: (root, service -> (previous, new))."""
    root = tmp_path / "release"
    releases = snapshots.reuse(root, "services", lambda: make_services(root, cli, sigstore, policy, monkeypatch))
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))  # as make_services leaves it
    return root, releases


@pytest.fixture
def git_services(
    tmp_path: Path, cli: Cli, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, tuple[str, str]]]:
    """As `services`, every ledger (the plan's, each service's) a ref of one bare git remote,
    tmp_path / "ledger.git"."""
    root = tmp_path / "release"
    remote = tmp_path / "ledger.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    return root, make_services(root, cli, sigstore, policy, monkeypatch, remote)


def remote_saga(remote: Path) -> list[tuple[str, str | None]]:
    """The saga in the plan's git ledger."""
    text = subprocess.run(
        ["git", "--git-dir", str(remote), "show", "refs/pipeline-kit/saga:ledger.jsonl"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        (e["details"]["state"], e["details"]["service"])
        for e in map(json.loads, text.splitlines())
        if e["kind"] == "saga"
    ]


def saga(root: Path) -> list[tuple[str, str | None]]:
    lines = (root / ".pipeline-kit-ledger" / "ledger.jsonl").read_text().splitlines()
    return [(e["details"]["state"], e["details"]["service"]) for e in map(json.loads, lines) if e["kind"] == "saga"]


def signed_summary(root: Path, sigstore: LocalSigstore) -> dict[str, Any]:
    """The saga's summary statement, after its bundle verified for the test signer."""
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    from pipeline_kit.trust import load_trust_config

    bundle = Bundle.from_json((root / ".pipeline-kit" / "release-plan.dev.sigstore.json").read_bytes())
    trusted = load_trust_config(sigstore.trust_config_path)
    _, payload = Verifier(trusted_root=trusted.trusted_root).verify_dsse(
        bundle, Identity(identity=SIGNER, issuer=sigstore.issuer)
    )
    return dict(json.loads(payload))


def test_a_failing_third_step_leaves_every_service_on_its_previous_release(
    cli: Cli,
    services: tuple[Path, dict[str, tuple[str, str]]],
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, releases = services
    # web passes its gates, and its deploy fails: only applying the plan can show that
    set_dev(root / "services" / "web", deploy="echo cannot reach the cluster >&2; exit 3")
    job_summary = github_summary(monkeypatch, root / "summary.md")
    result = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert result.code == 1, result.out + result.err
    # the job summary draws the plan's DAG with each step's state, as Mermaid reads it
    plan = charts(job_summary.read_text())[-1]
    accounts, orders = releases["accounts"][1][:12], releases["orders"][1][:12]
    assert plan["shown"] == [
        (f"accounts\ncompensated {accounts}", ["compensated"]),
        (f"orders\ncompensated {orders}", ["compensated"]),
        ("web\nfailed", ["failed"]),
    ]
    assert sorted(plan["edges"]) == [["n0", "n1"], ["n1", "n2"]]
    assert "web: failed: deploy to dev exited with code 3" in result.out
    for service in SERVICES:
        previous, _ = releases[service]
        assert deployed(root, service)[-1] == previous, service  # back where it was
    assert deployed(root, "accounts") == [releases["accounts"][0], releases["accounts"][1], releases["accounts"][0]]
    # compensations newest first, each once; the saga recorded in the plan's ledger
    assert saga(root) == THIRD_STEP_FAILED
    status = json.loads(cli(["release", "status", "--to", "dev", "--json"], cwd=root).out)
    assert status["outcome"] == "failed" and status["compensated"] == ["orders", "accounts"]
    # one signed statement says which releases went out together and how it ended
    summary = signed_summary(root, sigstore)
    assert summary["predicate"]["outcome"] == "failed" and summary["predicate"]["failed"] == "web"
    assert [(s["service"], s["state"]) for s in summary["predicate"]["steps"]] == [
        ("accounts", "compensated"),
        ("orders", "compensated"),
        ("web", "not promoted"),
    ]
    assert {s["name"].split("/")[0] for s in summary["subject"]} == {"accounts", "orders"}


@pytest.mark.parametrize("failure", ["deploy", "analysis"])
def test_a_failing_middle_step_compensates_the_first_and_never_starts_the_last(
    cli: Cli,
    services: tuple[Path, dict[str, tuple[str, str]]],
    sigstore: LocalSigstore,
    policy: list[str],
    failure: str,
) -> None:
    root, releases = services
    orders = root / "services" / "orders"
    if failure == "deploy":
        set_dev(orders, deploy="echo cannot reach the cluster >&2; exit 3")
    else:  # the metrics cannot be read: an analysis that errors fails closed, and rolls orders back
        config_path = orders / "pipeline-kit.yml"
        config = yaml.safe_load(config_path.read_text())
        config["metrics"] = {"prometheus": {"type": "prometheus", "url": "http://127.0.0.1:9", "timeout": 1.0}}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        checks = [{"name": "errors", "query": "sum(rate(http_requests_total[1m]))", "max": 1}]
        set_dev(orders, analysis={"provider": "prometheus", "interval": "1s", "count": 1, "checks": checks})
    result = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert result.code == 1, result.out + result.err
    assert saga(root) == [
        ("started", None),
        ("step-done", "accounts"),
        ("step-failed", "orders"),
        ("compensated", "accounts"),
        ("failed", None),
    ]
    for service in SERVICES:
        assert deployed(root, service)[-1] == releases[service][0], service  # all on their previous releases
    assert releases["web"][1] not in deployed(root, "web")  # the last step never started


def test_a_step_denied_at_plan_time_starts_nothing(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], policy: list[str]
) -> None:
    # `release plan` showed web denied; apply deployed accounts and orders, then compensated them
    root, releases = services
    set_dev(root / "services" / "web", gates=["signature", {"command": {"run": "exit 1"}}])
    shown = cli(["release", "plan", "--to", "dev", *policy], cwd=root)
    assert "web" in shown.out and "denied" in shown.out, shown.out + shown.err
    result = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert result.code == 1 and "web would be denied in dev by command" in result.err, result.out + result.err
    assert "nothing was started" in result.err and "pipeline-kit -C services/web" in result.err
    assert not (root / ".pipeline-kit-ledger" / "ledger.jsonl").exists()  # no saga recorded
    for service in SERVICES:
        assert deployed(root, service) == [releases[service][0]], service  # never touched


def test_a_failed_compensation_is_exit_3_and_retried_by_the_next_apply(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], policy: list[str]
) -> None:
    root, releases = services
    plan = root / "release-plan.yml"
    plan.write_text(PLAN.replace("path: services/accounts}", "path: services/accounts, compensate: exit 1}"))
    set_dev(root / "services" / "web", deploy="exit 3")
    failed = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert failed.code == 3 and "the compensation of accounts failed too" in failed.err, failed.out + failed.err
    assert [state for state, _ in saga(root)][-2:] == ["compensated", "compensation-failed"]
    assert json.loads(cli(["release", "status", "--to", "dev", "--json"], cwd=root).out)["outcome"] is None
    plan.write_text(PLAN.replace("path: services/accounts}", "path: services/accounts, compensate: 'true'}"))
    retried = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert retried.code == 1 and "accounts: compensated by its command" in retried.out, retried.out + retried.err
    assert [state for state, _ in saga(root)][-2:] == ["compensated", "failed"]
    assert deployed(root, "orders")[-1] == releases["orders"][0]  # compensated once, by the first apply


def test_a_compensated_service_is_not_held_and_the_plan_applies_once_fixed(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], policy: list[str]
) -> None:
    # a sibling failed: accounts and orders were compensated; they did nothing wrong
    root, releases = services
    web = root / "services" / "web"
    set_dev(web, deploy="exit 3")
    assert cli(["release", "apply", "--to", "dev", *policy], cwd=root).code == 1
    held = cli(["plan", "--to", "dev", *policy], cwd=root / "services" / "orders")
    assert held.code == 0, held.out + held.err  # rollback-hold passes: a compensation holds nothing
    set_dev(web, deploy='echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt')
    fixed = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert fixed.code == 0, fixed.out + fixed.err
    for service in SERVICES:
        assert deployed(root, service)[-1] == releases[service][1], service
    # killed after the saga finished, before its summary was signed: applying again signs it, and
    # starts nothing (it started a second saga and deployed every service again)
    (root / ".pipeline-kit" / "release-plan.dev.sigstore.json").unlink()
    before = {service: deployed(root, service) for service in SERVICES}
    again = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert again.code == 0 and "went out with this plan already" in again.out, again.out + again.err
    assert (root / ".pipeline-kit" / "release-plan.dev.sigstore.json").is_file()
    assert {service: deployed(root, service) for service in SERVICES} == before
    assert [state for state, _ in saga(root)].count("started") == 2


def test_a_saga_killed_inside_a_compensation_puts_the_service_back_on_resume(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], sigstore: LocalSigstore, policy: list[str]
) -> None:
    # killed after the compensation's rollback was signed, during its deploy, before any record
    root, releases = services
    accounts, (previous, new) = root / "services" / "accounts", releases["accounts"]
    slow = f'if [ "$PIPELINE_KIT_RELEASE_ID" = {previous} ]; then touch compensating; sleep 60; fi; '
    set_dev(accounts, deploy=slow + 'echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt')
    set_dev(root / "services" / "orders", deploy="exit 3")
    env = killed_at(["release", "apply", "--to", "dev", *policy], root, sigstore, accounts / "compensating")
    assert saga(root)[-1] == ("step-failed", "orders")  # the compensation left no record
    set_dev(accounts, deploy='echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt')
    os.environ["SIGSTORE_IDENTITY_TOKEN"] = env["SIGSTORE_IDENTITY_TOKEN"]
    try:
        resumed = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    finally:
        del os.environ["SIGSTORE_IDENTITY_TOKEN"]
    assert resumed.code == 1 and "accounts: rolled back from" in resumed.out, resumed.out + resumed.err
    assert deployed(root, "accounts") == [previous, new, previous]  # back, never forward to `new` again
    assert saga(root)[-2:] == [("compensated", "accounts"), ("failed", None)]
    shown = cli(["plan", "--to", "dev", *policy], cwd=accounts)
    assert shown.code == 0, shown.out + shown.err  # nothing held: accounts did nothing wrong


def test_of_two_applies_of_one_plan_one_runs(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], sigstore: LocalSigstore, policy: list[str]
) -> None:
    # both ran: every service promoted and compensated twice
    root, _ = services
    set_dev(root / "services" / "accounts", deploy='sleep 2; echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt')
    env = job_env(sigstore)
    command = [sys.executable, "-m", "pipeline_kit", "release", "apply", "--to", "dev", *policy]
    jobs = [
        subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(job.wait(timeout=180), *job.communicate()) for job in jobs]
    assert sorted(code for code, _, _ in results) == [0, 2], results
    assert any("being applied by another job" in err for code, _, err in results if code == 2), results
    assert [state for state, _ in saga(root)].count("started") == 1
    assert len(deployed(root, "accounts")) == 2  # the release before, and this plan's, once


def forge_saga(root: Path, state: str, service: str | None = None, release: str | None = None) -> None:
    """One well-chained line in the plan's ledger, as anyone who can write it may append."""
    from datetime import datetime, timezone

    from pipeline_kit.ledger import Draft, FileLedger
    from pipeline_kit.release_plan import load_plan

    digest = load_plan(root / "release-plan.yml").digest
    details = {"state": state, "plan": digest, "service": service}
    draft = Draft(kind="saga", environment="dev", release=release, actor="mallory", time=datetime.now(timezone.utc))
    FileLedger(root / ".pipeline-kit-ledger" / "ledger.jsonl").append(draft.model_copy(update={"details": details}))


def test_forged_saga_lines_skip_no_deploy(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], policy: list[str]
) -> None:
    # started, step-done for every service, finished: apply said "went out already" and signed it
    root, releases = services
    forge_saga(root, "started")
    for service in SERVICES:
        forge_saga(root, "step-done", service, releases[service][1])
    forge_saga(root, "step-done", "ghost", releases["web"][1])  # a service the plan does not have
    forge_saga(root, "finished")
    result = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert result.code == 0 and "went out with this plan already" not in result.out, result.out + result.err
    for service in SERVICES:
        assert deployed(root, service) == list(releases[service]), service  # each promoted, once


def test_a_forged_step_done_naming_the_release_already_there_skips_nothing(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], policy: list[str]
) -> None:
    # each line named the release the service already runs (signed there): the plan was skipped
    root, releases = services
    forge_saga(root, "started")
    for service in SERVICES:
        forge_saga(root, "step-done", service, releases[service][0])
    result = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert result.code == 0, result.out + result.err
    for service in SERVICES:
        assert deployed(root, service)[-1] == releases[service][1], service


def test_a_second_apply_beside_a_running_one_exits_2(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], sigstore: LocalSigstore, policy: list[str]
) -> None:
    # a resumed saga: both applies went on with it (steps promoted twice, two `finished`)
    root, _ = services
    set_dev(
        root / "services" / "orders", deploy='touch deploying; sleep 5; echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt'
    )
    env = job_env(sigstore)
    command = [sys.executable, "-m", "pipeline_kit", "release", "apply", "--to", "dev", *policy]
    first = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (root / "services" / "orders" / "deploying").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.environ["SIGSTORE_IDENTITY_TOKEN"] = env["SIGSTORE_IDENTITY_TOKEN"]
    try:
        second = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    finally:
        del os.environ["SIGSTORE_IDENTITY_TOKEN"]
    assert first.wait(timeout=120) == 0, first.communicate()
    assert second.code == 2 and "being applied by another job" in second.err, second.out + second.err
    assert [state for state, _ in saga(root)].count("finished") == 1
    assert [state for state, _ in saga(root)].count("step-done") == 3


def test_a_killed_apply_resumes_without_repeating_a_step(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], sigstore: LocalSigstore, policy: list[str]
) -> None:
    root, releases = services
    orders = root / "services" / "orders"
    set_dev(orders, deploy='touch deploying; sleep 60; echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt')
    # the job and its deploy command killed, as a runner dies
    env = killed_at(["release", "apply", "--to", "dev", *policy], root, sigstore, orders / "deploying")
    assert saga(root) == [("started", None), ("step-done", "accounts")]
    set_dev(orders, deploy='echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt')
    os.environ["SIGSTORE_IDENTITY_TOKEN"] = env["SIGSTORE_IDENTITY_TOKEN"]
    try:
        resumed = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    finally:
        del os.environ["SIGSTORE_IDENTITY_TOKEN"]
    assert resumed.code == 0, resumed.out + resumed.err
    assert "resuming: accounts done" in resumed.out
    # accounts was not promoted again; orders and web now run their new releases
    assert deployed(root, "accounts") == [releases["accounts"][0], releases["accounts"][1]]
    assert deployed(root, "orders")[-1] == releases["orders"][1]
    assert deployed(root, "web")[-1] == releases["web"][1]
    assert [state for state, _ in saga(root)][-1] == "finished"


def test_a_plan_with_a_cycle_or_an_unknown_need_is_one_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "release-plan.yml").write_text(
        "version: 1\nsteps:\n  - {service: a, path: a, needs: [b]}\n  - {service: b, path: b, needs: [a]}\n"
    )
    result = cli(["release", "status", "--to", "dev"], cwd=tmp_path)
    assert result.code == 2 and "steps form a cycle: a, b" in result.err
    (tmp_path / "release-plan.yml").write_text("version: 1\nsteps:\n  - {service: a, path: a, needs: [z]}\n")
    result = cli(["release", "status", "--to", "dev"], cwd=tmp_path)
    assert result.code == 2 and "a.needs names no step: z" in result.err


def test_independent_steps_run_at_once_and_their_dependants_after(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], policy: list[str]
) -> None:
    root, releases = services
    (root / "release-plan.yml").write_text(
        "version: 1\nsteps:\n"
        "  - {service: accounts, path: services/accounts}\n"
        "  - {service: orders, path: services/orders}\n"
        "  - {service: web, path: services/web, needs: [accounts, orders]}\n"
    )
    # each deploy notes when it started and ended
    stamp = 'date +%s.%N >> span.txt; sleep 1; date +%s.%N >> span.txt; echo "$PIPELINE_KIT_RELEASE_ID" >> deployed.txt'
    for service in ("accounts", "orders"):
        set_dev(root / "services" / service, deploy=stamp)
    result = cli(["release", "apply", "--to", "dev", *policy], cwd=root)
    assert result.code == 0, result.out + result.err
    a_start, a_end = map(float, (root / "services" / "accounts" / "span.txt").read_text().split())
    o_start, o_end = map(float, (root / "services" / "orders" / "span.txt").read_text().split())
    assert a_start < o_end and o_start < a_end  # their deploys overlapped
    done = [service for state, service in saga(root) if state == "step-done"]
    assert done[-1] == "web" and set(done[:2]) == {"accounts", "orders"}
    assert all(deployed(root, s)[-1] == releases[s][1] for s in SERVICES)


# -- the plan as the CI platform's own DAG ----------------------------------------------------------


def emitted_gitlab_run(
    cli: Cli, root: Path, sigstore: LocalSigstore, policy: list[str], **more: str
) -> subprocess.CompletedProcess[str]:
    """Emit the plan as a GitLab child pipeline and run it with gitlab-ci-local (shell executor);
    every ledger is a ref of one git remote, as jobs in workspaces of their own need."""
    from tests.test_gitlab_templates import TEMPLATES, gitlab_ci_local

    shutil.copytree(TEMPLATES, root / "gitlab-templates")
    emitted = cli(
        ["release", "emit", "--gitlab", "--to", "dev", "--python", sys.executable, "--templates", "gitlab-templates"],
        cwd=root,
    )
    assert emitted.code == 0, emitted.err
    (root / ".gitlab-ci.yml").write_text(emitted.out)
    (root / ".gitignore").write_text(".gitlab-ci-local/\n")
    init_repo(root, remote="https://gitlab.example.com/acme/release.git")
    variables = {"SIGSTORE_IDENTITY_TOKEN": sigstore.mint_token(SIGNER), **more}
    flags = dict(zip(policy[::2], policy[1::2], strict=True))
    for command in ("START", "STEP", "COMPENSATE", "FINISH"):
        for flag, value in flags.items():
            variables[f"PIPELINE_KIT_RELEASE_{command}_{flag.lstrip('-').upper().replace('-', '_')}"] = value
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "PIPELINE_KIT_"))}
    args = [gitlab_ci_local(), *(a for name, value in variables.items() for a in ("--variable", f"{name}={value}"))]
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_an_emitted_gitlab_pipeline_runs_each_step_as_its_own_job(
    cli: Cli, git_services: tuple[Path, dict[str, tuple[str, str]]], sigstore: LocalSigstore, policy: list[str]
) -> None:
    root, releases = git_services
    # GitLab's behaviour (gitlab-ci-local says GITLAB_CI=false): the summary as an artifact
    result = emitted_gitlab_run(cli, root, sigstore, policy, GITLAB_CI="true")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for job in ("release-start", "release-accounts", "release-orders", "release-web", "release-finish"):
        assert f"PASS  {job}" in result.stdout, result.stdout[-3000:]
    # the last job's summary draws the plan's DAG, every step promoted
    kept = root / ".gitlab-ci-local" / "artifacts" / "release-finish" / "pipeline-kit-summary.md"
    assert charts(kept.read_text())[-1]["shown"] == [
        (f"{service}\npromoted {releases[service][1][:12]}", ["passed"]) for service in SERVICES
    ]
    for service in SERVICES:  # GitLab runs each compensation job; none finds anything to undo
        assert f"{service}: nothing to compensate: every step was promoted" in result.stdout
    assert all(deployed(root, s)[-1] == releases[s][1] for s in SERVICES)
    assert remote_saga(root.parent / "ledger.git") == [
        ("started", None),
        ("step-done", "accounts"),
        ("step-done", "orders"),
        ("step-done", "web"),
        ("finished", None),
    ]
    summary = signed_summary(root, sigstore)
    assert summary["predicate"]["outcome"] == "finished"


def test_an_emitted_gitlab_pipeline_compensates_in_reverse_in_its_own_jobs(
    cli: Cli, git_services: tuple[Path, dict[str, tuple[str, str]]], sigstore: LocalSigstore, policy: list[str]
) -> None:
    root, releases = git_services
    set_dev(root / "services" / "web", gates=["signature", {"command": {"run": "exit 1"}}])
    result = emitted_gitlab_run(cli, root, sigstore, policy)
    assert result.returncode != 0  # the pipeline fails: the saga failed
    assert "FAIL  release-web" in result.stdout and "FAIL  release-finish" in result.stdout
    for service in SERVICES:
        assert deployed(root, service)[-1] == releases[service][0], service  # back where it was
    assert remote_saga(root.parent / "ledger.git") == THIRD_STEP_FAILED
    assert signed_summary(root, sigstore)["predicate"]["failed"] == "web"


def test_emitted_pipelines_pass_each_platform_schema_and_linters(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]]
) -> None:
    from pipeline_kit.saga_pipelines import CHECKOUT, DOWNLOAD_ARTIFACT
    from tests.conftest import ROOT
    from tests.test_gitlab_templates import GitLabLoader, check_schema

    root, _ = services
    remote = root.parent / "ledger.git"  # emitting reads the ledgers' settings, never the remote
    for service in SERVICES:
        set_ledger(root / "services" / service / "pipeline-kit.yml", remote, service)
    (root / "release-plan.yml").write_text(
        "version: 1\nsteps:\n"
        "  - {service: accounts, path: services/accounts}\n"
        "  - {service: orders, path: services/orders}\n"
        "  - {service: web, path: services/web, needs: [accounts, orders]}\n"
        f"ledger: {{backend: git, remote: {remote}, ref: refs/pipeline-kit/saga}}\n"
    )
    gitlab = cli(
        ["release", "emit", "--gitlab", "--to", "prod", "--job-environment", "{environment}/{service}"], cwd=root
    )
    assert gitlab.code == 0, gitlab.err
    (root / "child.json").write_text(json.dumps(yaml.load(gitlab.out, Loader=GitLabLoader)))
    check_schema(root / "child.json")  # as GitLab sees it once !reference is resolved
    pipeline = yaml.load(gitlab.out, Loader=GitLabLoader)
    assert pipeline["include"] == [
        {"project": "pipeline-kit/pipeline-kit", "ref": f"v{__version__}", "file": "gitlab-templates/install.yml"}
    ]
    signed_by = {"pipeline": "$PARENT_PIPELINE_ID", "job": "web-sign", "artifacts": True}  # its evidence
    assert pipeline["release-web"]["needs"] == ["release-start", "release-accounts", "release-orders", signed_by]
    assert [n["job"] for n in pipeline["release-finish"]["needs"] if isinstance(n, dict)] == [
        f"{s}-sign" for s in SERVICES
    ]
    assert "needs" not in pipeline["release-start"]  # it reads no evidence
    committed = cli(["release", "emit", "--gitlab", "--to", "prod", "--evidence-committed"], cwd=root)
    assert committed.code == 0 and "$PARENT_PIPELINE_ID" not in committed.out
    assert pipeline["release-web"]["environment"] == {"name": "prod/web"}
    # web is undone first: both others' compensations wait for it
    assert "compensate-web" in pipeline["compensate-accounts"]["needs"]
    assert "compensate-web" in pipeline["compensate-orders"]["needs"]
    assert pipeline["compensate-web"]["when"] == pipeline["release-finish"]["when"] == "always"

    unpinned = cli(["release", "emit", "--github", "--to", "prod", "--kit-commit", "v1"], cwd=root)
    assert unpinned.code == 2 and "40 hex digits" in unpinned.err
    commit = ["--kit-commit", "1" * 40]
    github = cli(["release", "emit", "--github", "--to", "prod", *commit, "-o", "release-prod.yml"], cwd=root)
    assert github.code == 0, github.err
    workflow_path = root / "release-prod.yml"
    workflow = yaml.safe_load(workflow_path.read_text())
    jobs = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert jobs is not None and "workflow_dispatch" in jobs
    steps = workflow["jobs"]
    assert steps["compensate-accounts"]["if"] == "${{ failure() }}"
    assert steps["release-finish"]["if"] == "${{ always() }}"
    assert steps["release-web"]["permissions"] == {"contents": "read", "actions": "read", "id-token": "write"}
    assert steps["release-start"]["permissions"] == {"contents": "read"}  # it reads no evidence
    checkout, _, download, take, kit = steps["release-web"]["steps"]
    assert checkout["uses"] == CHECKOUT
    example = (ROOT / "examples" / "github" / "release-pipeline.yml").read_text()
    assert CHECKOUT in example and DOWNLOAD_ARTIFACT in example  # one pin each
    assert download["uses"] == DOWNLOAD_ARTIFACT and download["with"]["name"] == "evidence-web"
    assert download["with"]["path"].startswith("${{ runner.temp }}/")  # never into the checkout
    assert take["env"]["TO"] == "services/web/.pipeline-kit"
    assert "env" not in kit
    assert len([s for s in steps["release-finish"]["steps"] if s.get("uses") == DOWNLOAD_ARTIFACT]) == 3
    committed = cli(["release", "emit", "--github", "--to", "prod", *commit, "--evidence-committed"], cwd=root)
    assert committed.code == 0 and "download-artifact" not in committed.out
    assert "from the checkout: commit the evidence" in committed.out
    bad = cli(["release", "emit", "--github", "--to", "prod", *commit, "--evidence-artifact", "evidence"], cwd=root)
    assert bad.code == 2 and "{service}" in bad.err

    # the ledgers in this repository: pushed with the job's token, never with the checkout's
    in_repository = cli(["release", "emit", "--github", "--to", "prod", *commit, "--ledger-in-repository"], cwd=root)
    assert in_repository.code == 2 and "release-plan.yml: ledger.token-variable: missing" in in_repository.err
    plan = (
        (root / "release-plan.yml")
        .read_text()
        .replace("ref: refs/pipeline-kit/saga", "ref: refs/pipeline-kit/saga, token-variable: GITHUB_TOKEN")
    )
    (root / "release-plan.yml").write_text(plan)
    for service in SERVICES:
        config_path = root / "services" / service / "pipeline-kit.yml"
        config = yaml.safe_load(config_path.read_text())
        config["ledger"]["token-variable"] = "GITHUB_TOKEN"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    args = ["release", "emit", "--github", "--to", "prod", *commit, "--ledger-in-repository", "-o", "pushing.yml"]
    assert cli(args, cwd=root).code == 0
    pushing_path = root / "pushing.yml"
    pushing = yaml.safe_load(pushing_path.read_text())["jobs"]
    for name, job in pushing.items():
        assert job["permissions"]["contents"] == "write", name
        checkout, *_, kit = job["steps"]
        assert checkout["with"] == {"persist-credentials": False}, name
        assert kit["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}, name
    assert "persist-credentials: true" not in pushing_path.read_text()
    bin_dir = Path(sys.executable).parent
    for path in (workflow_path, pushing_path):
        for linter in (
            [str(bin_dir / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
            [str(bin_dir / "actionlint"), "-ignore", "node20", str(path)],
            [str(bin_dir / "zizmor"), "--offline", "--no-progress", str(path)],
        ):
            linted = subprocess.run(linter, capture_output=True, text=True, check=False)
            assert linted.returncode == 0, linted.stdout + linted.stderr


def test_emit_refuses_a_ledger_the_jobs_cannot_share(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]]
) -> None:
    """Each job runs in a workspace of its own: a file ledger (the plan's or a service's) would be
    a different one in every job, so emitting refuses it, in one line naming the file and field."""
    root, _ = services
    commit = ["--kit-commit", "1" * 40]
    for platform in (["--gitlab"], ["--github", *commit]):
        refused = cli(["release", "emit", *platform, "--to", "dev"], cwd=root)  # the plan's default ledger
        assert refused.code == 2 and refused.out == "", refused.err
        first, hint = refused.err.strip().splitlines()
        assert "release-plan.yml: ledger.backend: file" in first and hint.startswith("hint: ledger: {backend: git")
    plan = (root / "release-plan.yml").read_text()
    (root / "release-plan.yml").write_text(plan + "ledger: {backend: git, ref: refs/pipeline-kit/saga}\n")
    set_ledger(root / "services" / "accounts" / "pipeline-kit.yml", root.parent / "ledger.git", "accounts")
    for platform in (["--gitlab"], ["--github", *commit]):
        refused = cli(["release", "emit", *platform, "--to", "dev"], cwd=root)  # orders keeps a file ledger
        assert refused.code == 2 and refused.out == "", refused.err
        assert "services/orders/pipeline-kit.yml: ledger.backend: file" in refused.err.splitlines()[0]
    # every ledger shared: on GitLab, one the jobs push over HTTPS (the project's origin) needs a
    # token that may push, named; the job token cannot
    for service in ("orders", "web"):
        set_ledger(root / "services" / service / "pipeline-kit.yml", root.parent / "ledger.git", service)
    refused = cli(["release", "emit", "--gitlab", "--to", "dev"], cwd=root)
    assert refused.code == 2 and "release-plan.yml: ledger.token-variable: missing: GitLab's job token" in refused.err
    # on GitHub too (a checkout without credentials cannot push), unless the job's own token goes in it
    refused = cli(["release", "emit", "--github", *commit, "--to", "dev"], cwd=root)
    assert refused.code == 2 and "ledger.token-variable: missing: the jobs cannot push over HTTPS" in refused.err
    (root / "release-plan.yml").write_text(
        plan + "ledger: {backend: git, ref: refs/pipeline-kit/saga, token-variable: LEDGER_PAT}\n"
    )
    assert cli(["release", "emit", "--gitlab", "--to", "dev"], cwd=root).code == 0
    github = cli(["release", "emit", "--github", *commit, "--to", "dev"], cwd=root)
    assert github.code == 0, github.err
    kit_steps = [job["steps"][-1] for job in yaml.safe_load(github.out)["jobs"].values()]
    assert all(step["env"] == {"LEDGER_PAT": "${{ secrets.LEDGER_PAT }}"} for step in kit_steps)  # never printed
    assert "&id" not in github.out  # written for people: no YAML anchors
    # what a job would find only when run is refused before: an environment a service lacks, two
    # platforms at once, two services on one ledger ref (one's history read as the other's)
    unknown = cli(["release", "emit", "--gitlab", "--to", "nope"], cwd=root)
    assert (
        unknown.code == 2 and "services/accounts/pipeline-kit.yml: environments: no environment 'nope'" in unknown.err
    )
    both = cli(["release", "emit", "--gitlab", "--github", *commit, "--to", "dev"], cwd=root)
    assert both.code == 2 and "one of them" in both.err and both.out == ""
    set_ledger(root / "services" / "web" / "pipeline-kit.yml", root.parent / "ledger.git", "orders")
    for command in (["emit", "--gitlab"], ["plan", "--offline"]):
        shared = cli(["release", *command, "--to", "dev"], cwd=root)
        assert shared.code == 2 and shared.out == "", shared.err
        assert "services/web/pipeline-kit.yml: ledger: " in shared.err and "is also orders's ledger" in shared.err
        assert "hint: give web a ref of its own" in shared.err


def test_a_step_job_refuses_without_an_open_saga_and_never_runs_twice(
    cli: Cli, services: tuple[Path, dict[str, tuple[str, str]]], policy: list[str]
) -> None:
    root, releases = services
    early = cli(["release", "step", "accounts", "--to", "dev", *policy], cwd=root)
    assert early.code == 2 and "no release plan in progress to dev" in early.err
    assert cli(["release", "start", "--to", "dev", *policy], cwd=root).code == 0
    skipped = cli(["release", "step", "orders", "--to", "dev", *policy], cwd=root)
    assert skipped.code == 2 and "orders: needs accounts first" in skipped.err
    assert cli(["release", "step", "accounts", "--to", "dev", *policy], cwd=root).code == 0
    again = cli(["release", "step", "accounts", "--to", "dev", *policy], cwd=root)
    assert again.code == 0 and "accounts: done already" in again.out
    assert deployed(root, "accounts").count(releases["accounts"][1]) == 1


def test_an_emitted_github_workflow_runs_under_act_and_compensates_in_its_own_jobs(
    cli: Cli, tmp_path: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One repository with three services, every ledger a ref of one shared git remote (each job
    runs in its own workspace), each service's evidence only in its artifact (never committed),
    the emitted workflow run by act: web is denied, so its compensation jobs put orders, then
    accounts, back, and the last job fails the run."""
    from pipeline_kit.saga_pipelines import DOWNLOAD_ARTIFACT
    from tests.conftest import ROOT, kit_checkout
    from tests.test_actions import KIT, run_act

    root = tmp_path / "release"
    remote = tmp_path / "ledger.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    out = tmp_path / "out"  # where the deploys write: outside every job's workspace
    policy = ["--trust-config", str(sigstore.trust_config_path), "--cert-identity", SIGNER]
    policy += ["--cert-oidc-issuer", sigstore.issuer]
    for service in SERVICES:
        project = root / "services" / service
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
        (project / ".gitignore").write_text("/dist/\n")  # not bundles/dist/: the evidence travels
        config_path = project / "pipeline-kit.yml"
        config = yaml.safe_load(config_path.read_text())
        config["ledger"] = {"backend": "git", "remote": str(remote), "ref": f"refs/pipeline-kit/{service}"}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        set_dev(
            project,
            deploy=f'echo "$PIPELINE_KIT_RELEASE_ID" >> "$TEST_OUT/{service}.txt"',
            **{"pass-env": ["TEST_OUT"]},
        )
    (root / "release-plan.yml").write_text(
        PLAN + f"ledger: {{backend: git, remote: {remote}, ref: refs/pipeline-kit/saga}}\n"
    )
    init_repo(root, remote=REPOSITORY + ".git")
    monkeypatch.setenv("TEST_OUT", str(tmp_path / "before"))
    (tmp_path / "before").mkdir()
    releases = {}
    for service in SERVICES:
        releases[service] = in_dev_and_next(cli, root / "services" / service, sigstore, monkeypatch, policy)
    # web's new release is denied
    set_dev(root / "services" / "web", gates=["signature", {"command": {"run": "exit 1"}}])
    artifacts = tmp_path / "artifacts"  # what the download-artifact stand-in serves
    artifacts.mkdir()
    for service in SERVICES:  # the evidence travels only as each service's artifact
        shutil.move(root / "services" / service / ".pipeline-kit", artifacts / f"evidence-{service}")
        (root / "services" / service / ".gitignore").write_text("/dist/\n/.pipeline-kit/\n")
    emitted = cli(["release", "emit", "--github", "--to", "dev", "--kit-commit", "0" * 40], cwd=root)
    assert emitted.code == 0, emitted.err
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "release-dev.yml").write_text(emitted.out)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "plan"], cwd=root, check=True)
    variables: list[str] = []
    for command in ("START", "STEP", "COMPENSATE", "FINISH"):
        for flag, value in zip(policy[::2], policy[1::2], strict=True):
            variables += ["--env", f"PIPELINE_KIT_RELEASE_{command}_{flag[2:].upper().replace('-', '_')}={value}"]
    kit = kit_checkout(tmp_path / "kit-release")
    download = f"{DOWNLOAD_ARTIFACT}={ROOT / 'tests' / 'assets' / 'artifact-actions' / 'download'}"
    extra = ("--local-repository", f"{KIT}@{'0' * 40}={kit}", "--local-repository", download, *variables)
    extra += ("--env", f"TEST_ARTIFACTS={artifacts}")
    result, out = run_act(
        root,
        tmp_path,
        sigstore,
        "",
        workflow=".github/workflows/release-dev.yml",
        extra=extra,
        event="workflow_dispatch",
    )
    log = "\n".join(line for line in result.stdout.splitlines() if "  | " in line)[-6000:] + result.stderr[-2000:]
    assert result.returncode != 0, log  # the saga failed: the last job says so
    summaries = [
        line for line in result.stdout.splitlines() if "Summary - ### pipeline-kit: release plan to dev" in line
    ]
    assert any("/release-orders" in line for line in summaries), log  # each job shows the saga so far
    # the last job's summary draws the plan's DAG, as Mermaid reads it
    assert charts(result.stdout)[-1]["shown"] == [
        (f"accounts\ncompensated {releases['accounts'][1][:12]}", ["compensated"]),
        (f"orders\ncompensated {releases['orders'][1][:12]}", ["compensated"]),
        ("web\nfailed", ["failed"]),
    ]
    for service in ("accounts", "orders"):  # deployed in their own jobs, then put back
        assert (out / f"{service}.txt").is_file(), log
        assert (out / f"{service}.txt").read_text().split() == [releases[service][1], releases[service][0]], log
    assert not (out / "web.txt").exists()
    saga_log = subprocess.run(
        ["git", "--git-dir", str(remote), "show", "refs/pipeline-kit/saga:ledger.jsonl"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = [(e["details"]["state"], e["details"]["service"]) for e in map(json.loads, saga_log.splitlines())]
    assert states == THIRD_STEP_FAILED, log


@pytest.mark.parametrize("planted", ["symlink", "fifo"])
def test_an_emitted_job_takes_only_plain_evidence_from_an_artifact(tmp_path: Path, planted: str) -> None:
    """The artifact comes from a job that may have run user code: a link in it (to the project's
    config, say) or anything but files and directories stops the job, and the checkout's
    evidence directory is left as it was; plain files land only under the evidence directory."""
    from pipeline_kit.saga_pipelines import TAKE_EVIDENCE

    downloaded, checkout = tmp_path / "downloaded", tmp_path / "checkout"
    (downloaded / "bundles").mkdir(parents=True)
    (downloaded / "release.json").write_text("{}")
    (checkout / "svc" / ".pipeline-kit").mkdir(parents=True)
    (checkout / "svc" / ".pipeline-kit" / "kept").write_text("as it was")
    (checkout / "svc" / "pipeline-kit.yml").write_text("the config")
    env = {"PATH": os.environ["PATH"], "ARTIFACT": "evidence-svc", "FROM": str(downloaded)}
    env["TO"] = str(checkout / "svc" / ".pipeline-kit")
    if planted == "symlink":
        (downloaded / "bundles" / "config").symlink_to(checkout / "svc" / "pipeline-kit.yml")
    else:
        os.mkfifo(downloaded / "bundles" / "pipe")
    refused = subprocess.run(["bash", "-c", TAKE_EVIDENCE], env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "neither a file nor a directory" in refused.stdout
    assert (checkout / "svc" / ".pipeline-kit" / "kept").read_text() == "as it was"
    for child in (downloaded / "bundles").iterdir():
        child.unlink()
    (downloaded / "pipeline-kit.yml").write_text("planted")  # a plain file: lands in the evidence dir only
    taken = subprocess.run(["bash", "-c", TAKE_EVIDENCE], env=env, capture_output=True, text=True, check=False)
    assert taken.returncode == 0, taken.stderr
    assert sorted(p.name for p in (checkout / "svc" / ".pipeline-kit").iterdir()) == [
        "bundles",
        "pipeline-kit.yml",
        "release.json",
    ]
    assert (checkout / "svc" / "pipeline-kit.yml").read_text() == "the config"


@pytest.mark.parametrize(
    ("environment", "plan_file", "path", "refused"),
    [
        ("dev${{ github.event.pull_request.title }}", "release-plan.yml", "svc", "--to"),
        ("dev", "plans/${{ github.event.pull_request.title }}.yml", "svc", "the plan's path"),
        ("dev", "plans/a.yml\nrelease-evil: {script: [id]}\n#", "svc", "the plan's path"),
        ("dev", "release-plan.yml", "svc${{ secrets.DEPLOY_KEY }}", "steps.a.path"),
        ("dev", "release-plan.yml", "svc$[[ inputs.x ]]", "steps.a.path"),
        ("dev", "release-plan.yml", "svc", "--job-environment"),
    ],
)
def test_emit_carries_no_expression_or_line_break_from_its_inputs_into_the_pipeline(
    environment: str, plan_file: str, path: str, refused: str
) -> None:
    # each platform evaluates `${{ }}` (GitHub) or `$[[ ]]` (GitLab) anywhere in the file, a `run:`
    # line included, before any shell quoting applies; a line break in the header's comment
    # would start YAML of its own (on GitLab, a job)
    from pipeline_kit.errors import UsageError
    from pipeline_kit.release_plan import ReleasePlan
    from pipeline_kit.saga_pipelines import github_workflow, gitlab_pipeline

    plan = ReleasePlan.model_validate({"version": 1, "steps": [{"service": "a", "path": path}]})
    scope = "{environment}$[[ inputs.x ]]" if refused == "--job-environment" else "{environment}"
    with pytest.raises(UsageError, match=re.escape(refused)):
        github_workflow(plan, environment, plan_file, kit_commit="1" * 40, job_environment=scope)
    with pytest.raises(UsageError, match=re.escape(refused)):
        gitlab_pipeline(plan, environment, plan_file, job_environment=scope)
    fine = ReleasePlan.model_validate({"version": 1, "steps": [{"service": "a", "path": "services/my svc"}]})
    assert "services/my svc/.pipeline-kit" in github_workflow(fine, "dev", "my plan's.yml", kit_commit="1" * 40)
    assert "-f 'my plan'\"'\"'s.yml'" in gitlab_pipeline(fine, "dev", "my plan's.yml")
