"""The promotion machine attacked at its edges (issue 22): resume, abort and concurrent starts of
a rollout. Each test performs the attack as reproduced on an earlier main and checks that it fails:
nothing signed, the traffic where the operator put it, the documented exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SIGNER, Cli, forge_line, job_env, killed_at
from tests.sigstore_instance import LocalSigstore
from tests.test_rollout import ledger, second, weights, with_rollout

__all__ = ["second"]  # the fixture, used here by name

VSA = Path(".pipeline-kit") / "promotions" / "dev.vsa.sigstore.json"


def add_gate(project: Path, gate: object) -> None:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["gates"].append(gate)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def set_deploy(project: Path, command: str) -> None:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["deploy"] = command
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_a_forged_resume_of_a_release_the_gates_deny_signs_nothing(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    # The attack: two appended ledger lines (started, then paused at the last step) and two
    # unsigned files (a decision saying passed, a rollout record) for a release dev's gates deny.
    _, release = second
    with_rollout(signed, [{"weight": 10}, {"weight": 100}])
    add_gate(signed, {"command": {"run": "exit 1"}})
    details = {"stable_slot": "green", "canary_slot": "blue", "stable_release": None, "steps": 2}
    forge_line(signed, kind="rollout", environment="dev", release=release, details={"state": "started", **details})
    forge_line(signed, kind="rollout", environment="dev", release=release, details={"state": "paused", "step": 1})
    promotions = signed / ".pipeline-kit" / "promotions"
    promotions.mkdir(exist_ok=True)
    (promotions / "dev.decision.json").write_text(json.dumps({"release": release, "verdict": "passed"}))
    (promotions / "dev.rollout.json").write_text(json.dumps({"release": release, "steps": {}}))
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 1 and f"{release} would be denied in dev now" in resumed.err, resumed.out + resumed.err
    assert not (signed / VSA).exists() and weights(signed) == []  # nothing signed, nothing moved
    custody = cli(["verify", "--env", "dev", *policy], cwd=signed)
    assert custody.code == 1, custody.out + custody.err


def test_a_break_glass_rollout_is_never_laundered_into_a_pass(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    # The attack: promote past a failing gate with --break-glass, pause, edit the decision file
    # to say passed with every gate passed, resume: the VSA said PASSED with no break-glass level.
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 100}])
    add_gate(signed, {"command": {"run": "exit 1"}})
    waived = cli(["promote", "--to", "dev", "--break-glass", "--reason", "hotfix", *policy], cwd=signed)
    assert waived.code == 0 and "rollout: paused" in waived.out, waived.out + waived.err
    path = signed / ".pipeline-kit" / "promotions" / "dev.decision.json"
    decision = json.loads(path.read_text())
    decision.update(verdict="passed", break_glass=False)
    for gate in decision["gates"]:
        gate["verdict"] = "passed"
    path.write_text(json.dumps(decision))
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 1 and "would be denied in dev now" in resumed.err, resumed.out + resumed.err
    assert weights(signed) == ["10 blue green"]  # no step after the pause
    assert not any(e["kind"] == "rollout" and e["details"]["state"] == "finished" for e in ledger(signed)[-3:])


def test_bytes_changed_during_a_pause_stop_the_rollout(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    wheel = next((signed / "dist").glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")  # the subject changes while the rollout waits
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code in (1, 2) and weights(signed) == ["10 blue green"], resumed.out + resumed.err
    assert not any(e["kind"] == "rollout" and e["details"]["state"] == "finished" for e in ledger(signed)[-3:])


def test_resume_after_a_failed_canary_deploy_deploys_again_first(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    # The attack: the canary's deploy failed (exit 3), resume applied 10, 50, 100 and signed PASSED.
    _, release = second
    with_rollout(signed, [{"weight": 10}, {"weight": 100}])
    set_deploy(signed, "exit 7")
    failed = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert failed.code == 3 and weights(signed) == [], failed.out + failed.err
    still = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)  # the deploy still fails
    assert still.code == 3 and weights(signed) == [], still.out + still.err
    set_deploy(signed, 'echo "$PIPELINE_KIT_SLOT $PIPELINE_KIT_RELEASE_ID" >> deploys.txt')
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 0 and "rollout: finished" in resumed.out, resumed.out + resumed.err
    assert (signed / "deploys.txt").read_text().split() == ["blue", release]  # deployed before any step
    assert weights(signed) == ["10 blue green", "100 blue green"]


def test_an_abort_stops_the_job_running_the_rollout(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, token: None, second: tuple[str, str]
) -> None:
    # The attack: abort while the rollout's job waits in a pause; the job then recorded 50, 100,
    # deployed, finished and signed the VSA (weights 10, 0, 50, 100).
    with_rollout(signed, [{"weight": 10, "pause": "60s"}, {"weight": 50}, {"weight": 100}])
    job = subprocess.Popen(
        [sys.executable, "-m", "pipeline_kit", "promote", "--to", "dev", *policy],
        cwd=signed,
        env=job_env(sigstore),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while weights(signed) != ["10 blue green"] and time.monotonic() < deadline:
        time.sleep(0.05)
    aborted = cli(["rollout", "abort", "--env", "dev", "--reason", "wrong build", *policy], cwd=signed)
    assert aborted.code == 0, aborted.out + aborted.err
    out, err = job.communicate(timeout=30)  # stopped within its pause, not after 60 s
    assert job.returncode == 1 and "was aborted while this job ran" in err, out + err
    assert weights(signed) == ["10 blue green", "0 blue green"]
    assert not (signed / VSA).exists()  # nothing signed after the abort
    states = [e["details"]["state"] for e in ledger(signed) if e["kind"] == "rollout"]
    assert states[-1] == "aborted"


def test_an_abort_during_the_last_steps_pause_switches_back_and_signs_nothing(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    # blue-green by hand: switch, watch, switch back; a forged "deployed" line changes nothing
    _, release = second
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 100, "pause": "manual"}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    forge_line(signed, kind="deployed", environment="dev", release=release, details={"rollout": True})
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 0 and "rollout: paused" in resumed.out, resumed.out + resumed.err
    aborted = cli(["rollout", "abort", "--env", "dev", "--reason", "wrong build", *policy], cwd=signed)
    assert aborted.code == 0, aborted.out + aborted.err
    assert weights(signed) == ["10 blue green", "100 blue green", "0 blue green"]
    assert not (signed / VSA).exists()
    assert cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed).code == 2  # nothing to resume


def test_of_four_rollouts_started_at_once_one_runs(
    signed: Path, policy: list[str], sigstore: LocalSigstore, token: None, second: tuple[str, str]
) -> None:
    # The attack (or the accident): four jobs promote one strategy environment at once; all four
    # deployed a canary and two releases were both signed PASSED.
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 100}])
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline_kit", "promote", "--to", "dev", *policy],
            cwd=signed,
            env=job_env(sigstore),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(job.wait(timeout=120), job.communicate()) for job in jobs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2, 2], results
    refused = [err for code, (_, err) in results if code == 2]
    assert all("a rollout of" in err and "finish it first" in err for err in refused), refused
    assert len((signed / "deploys.txt").read_text().splitlines()) == 1  # one canary deploy
    starts = [e for e in ledger(signed) if e["kind"] == "rollout" and e["details"]["state"] == "started"]
    assert len(starts) == 2  # the first rollout's (second fixture) and the one that won


@pytest.mark.parametrize("backend", ["file", "git"])
def test_a_guarded_append_admits_one_of_two_racing_writers(tmp_path: Path, backend: str) -> None:
    """The compare-and-swap under every claim: of writers that each refuse if another claimed
    first, exactly one appends, on either backend."""
    import threading
    from datetime import datetime, timezone

    from pipeline_kit.errors import UsageError
    from pipeline_kit.ledger import Draft, Entry, FileLedger, GitLedger, Ledger
    from tests.conftest import git

    if backend == "git":
        remote = tmp_path / "remote.git"
        subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
        work = tmp_path / "work"
        work.mkdir()
        git(work, "init", "--quiet")
        ledgers: list[Ledger] = [GitLedger(work, str(remote), "refs/pipeline-kit/ledger") for _ in range(6)]
    else:
        ledgers = [FileLedger(tmp_path / "ledger.jsonl") for _ in range(6)]

    def unclaimed(entries: object) -> None:
        assert isinstance(entries, list)
        if any(isinstance(e, Entry) and e.kind == "rollout" for e in entries):
            raise UsageError("claimed already")

    outcomes: list[str] = []
    barrier = threading.Barrier(len(ledgers))

    def claim(ledger: Ledger) -> None:
        barrier.wait()
        draft = Draft(kind="rollout", environment="dev", actor="a", time=datetime.now(timezone.utc))
        try:
            ledger.append(draft, guard=unclaimed)
            outcomes.append("appended")
        except UsageError:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["appended"] + ["refused"] * (len(ledgers) - 1)
    assert [e.kind for e in ledgers[0].verify()] == ["rollout"]


def analysed_by(project: Path, prometheus_url: str, deployed: Path) -> dict[str, object]:
    """dev's metrics: the live Prometheus; the deploy tells the exporter which release runs."""
    from tests.test_analysis import ERROR_RATIO

    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"prometheus": {"type": "prometheus", "url": prometheus_url, "timeout": 2.0}}
    config["environments"]["dev"]["deploy"] = f'echo "$PIPELINE_KIT_RELEASE_ID" > {deployed}'
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    checks = [{"name": "error-ratio", "query": ERROR_RATIO, "max": 0.01}]
    # the first measurements may find no series yet (scrapes every second, rates over 10 s)
    return {"provider": "prometheus", "interval": "2s", "count": 3, "inconclusive-limit": 2, "checks": checks}


def test_promote_json_on_a_rollout_is_one_document_with_its_analysis(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str], live: tuple[Any, Any]
) -> None:
    # a line came after the JSON, and `analysis` was null although the rollout's analysis ran
    exporter, prometheus = live
    with_rollout(signed, [{"weight": 50}, {"weight": 100}])
    analysis = analysed_by(signed, prometheus.url, exporter.deployed)  # after: it sets the deploy command
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["analysis"] = analysis
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli(["promote", "--to", "dev", "--json", *policy], cwd=signed)
    assert result.code == 0, result.out + result.err
    document = json.loads(result.out)  # the whole of stdout
    assert document["verdict"] == "passed" and document["rollout"]["verdict"] == "finished"
    assert document["analysis"]["verdict"] == "passed"
    assert [a["step"] for a in document["rollout"]["analyses"]] == [1, 2]


def test_run_shows_the_analysis_as_it_goes_in_the_words_of_promote(
    cli: Cli, described: Path, policy: list[str], token: None, live: tuple[Any, Any]
) -> None:
    # `run` printed nothing for the whole analysis, then "would pass" after a real promotion
    exporter, prometheus = live
    analysis = analysed_by(described, prometheus.url, exporter.deployed)
    config_path = described / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["analysis"] = analysis
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli(["run", "--reason", "local release", *policy], cwd=described)
    assert result.code == 0, result.out + result.err
    assert "analysis 1: error-ratio" in result.err and "analysis 3: error-ratio" in result.err
    assert "dev: release " in result.out and "passed its gates" in result.out
    assert "would pass" not in result.out
    assert "analysis: passed" in result.out


@pytest.mark.parametrize("state", ["decided", "deploying"])
def test_a_promotion_killed_in_each_state_is_described_truthfully_then_done_again(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, state: str
) -> None:
    """kill -9 while the decision is being recorded (its ledger line blocked) or while the deploy
    runs; then what the ledger and the signed record say, and a fresh promotion."""
    import fcntl

    set_deploy(signed, 'touch deploying; sleep 60; echo "$PIPELINE_KIT_RELEASE_ID" >> deploys.txt')
    lock_path = signed / ".pipeline-kit-ledger" / "ledger.jsonl.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as lock:
        if state == "decided":  # the append waits for this lock: killed after deciding, before recording
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        decision = Path(".pipeline-kit") / "promotions" / "dev.decision.json"
        killed_at(
            ["promote", "--to", "dev", *policy],
            signed,
            sigstore,
            signed / (decision if state == "decided" else "deploying"),
        )
    entries = ledger(signed) if (signed / ".pipeline-kit-ledger" / "ledger.jsonl").exists() else []
    audit = cli(["ledger", "verify", *policy], cwd=signed)
    assert not (signed / VSA).exists()  # nothing arrived: nothing signed says so
    if state == "decided":
        assert entries == []  # it did not happen
        assert audit.code == 0, audit.out + audit.err
    else:
        assert [(e["kind"], e["details"].get("deploy")) for e in entries] == [("promoted", "pending")]
        planned = cli(["plan", "--to", "dev", *policy], cwd=signed)
        assert "never finished deploying: it does not count as arrived" in planned.out, planned.out
    set_deploy(signed, 'echo "$PIPELINE_KIT_RELEASE_ID" >> deploys.txt')
    os.environ["SIGSTORE_IDENTITY_TOKEN"] = sigstore.mint_token(SIGNER)
    try:
        again = cli(["promote", "--to", "dev", *policy], cwd=signed)
    finally:
        del os.environ["SIGSTORE_IDENTITY_TOKEN"]
    assert again.code == 0, again.out + again.err
    assert ledger(signed)[-1]["kind"] == "deployed"
    assert cli(["verify", "--env", "dev", *policy], cwd=signed).code == 0
    assert cli(["ledger", "verify", *policy], cwd=signed).code == 0


def test_a_rollout_killed_during_its_canary_deploy_deploys_again_on_resume(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, token: None, second: tuple[str, str]
) -> None:
    _, release = second
    with_rollout(signed, [{"weight": 10}, {"weight": 100}])
    set_deploy(signed, "touch deploying; sleep 60")
    killed_at(["promote", "--to", "dev", *policy], signed, sigstore, signed / "deploying")
    status = json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)
    assert status["state"] == "started" and status["release"] == release
    set_deploy(signed, 'echo "$PIPELINE_KIT_SLOT $PIPELINE_KIT_RELEASE_ID" >> deploys.txt')
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 0 and "rollout: finished" in resumed.out, resumed.out + resumed.err
    assert (signed / "deploys.txt").read_text().split() == ["blue", release]
    assert weights(signed) == ["10 blue green", "100 blue green"]
    assert cli(["verify", "--env", "dev", *policy], cwd=signed).code == 0


def test_a_forged_first_rollout_line_never_skips_the_steps(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    # a line restarting the rollout as "first" (nothing ran there) would send all traffic at once
    _, release = second
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    forged_start(signed, release, live="green", stable=None, first=True)
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 1 and "says nothing ran there" in resumed.err, resumed.out + resumed.err
    assert weights(signed) == ["10 blue green"]


def test_a_planted_copy_of_a_signed_hold_never_hides_it(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    # a copy of the hold with its payload changed, planted where it is read first, was taken for the
    # genuine bundle (the same signature) and skipped it; an `annotated` line then lifted the hold
    import base64

    _, release = second
    with_rollout(signed, [{"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    assert cli(["rollback", "--env", "dev", "--reason", "bad release", *policy], cwd=signed).code == 0
    hold = next(e for e in reversed(ledger(signed)) if e["kind"] == "rolled-back")
    genuine = json.loads((signed / ".pipeline-kit-ledger" / "ledger.jsonl.d" / hold["details"]["hold"]).read_bytes())
    genuine["dsseEnvelope"]["payload"] = base64.b64encode(b'{"not": "a statement"}').decode()
    (signed / ".pipeline-kit" / "promotions" / "dev.rollback.sigstore.json").write_text(json.dumps(genuine))
    forge_line(signed, kind="annotated", environment="dev", release=release, reason="fixed, trust me")
    held = cli(["plan", "--to", "dev", *policy], cwd=signed)
    assert held.code == 1 and "no signed root cause since" in held.out, held.out
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 1


def test_no_line_after_an_abort_makes_the_rollout_go_on(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    _, release = second
    with_rollout(signed, [{"weight": 20, "pause": "manual"}, {"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    assert cli(["rollout", "abort", "--env", "dev", "--reason", "wrong build", *policy], cwd=signed).code == 0
    forge_line(signed, kind="rollout", environment="dev", release=release, details={"state": "paused", "step": 0})
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 2 and "no rollout in progress" in resumed.err, resumed.out + resumed.err
    assert weights(signed) == ["20 blue green", "0 blue green"] and not (signed / VSA).exists()


def test_a_forged_finished_line_never_puts_the_canary_on_the_live_slot(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    stable, _ = second  # green is live with `stable` (its signed VSA names the slot)
    details = {"state": "finished", "step": 0, "weight": 100, "canary_slot": "blue"}
    forge_line(signed, kind="rollout", environment="dev", release=stable, details=details)
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    assert (signed / "deploys.txt").read_text().split()[0] == "blue"  # the idle slot, as signed
    assert weights(signed) == ["10 blue green"]


def slow_traffic(project: Path, condition: str, seconds: int) -> None:
    """The traffic command takes `seconds` when `condition` (a shell test) holds."""
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["traffic"]["command"] = (
        f"if {condition}; then sleep {seconds}; fi; "
        'echo "$PIPELINE_KIT_CANARY_WEIGHT $PIPELINE_KIT_CANARY_SLOT $PIPELINE_KIT_STABLE_SLOT" >> weights.txt'
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_an_abort_and_a_finish_at_once_agree_with_the_traffic(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, token: None, second: tuple[str, str]
) -> None:
    # the abort moved traffic to stable, then lost to the finish: the VSA said the canary was live
    with_rollout(signed, [{"weight": 20, "pause": "manual"}, {"weight": 100}])
    slow_traffic(signed, '[ "$PIPELINE_KIT_CANARY_WEIGHT" = 0 ]', 4)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    command = [sys.executable, "-m", "pipeline_kit", "rollout", "abort", "--env", "dev", "--reason", "bad", *policy]
    abort = subprocess.Popen(command, cwd=signed, env=job_env(sigstore), stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # the abort is recorded, its traffic change under way
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    abort.wait(timeout=60)
    status = json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)
    if status["state"] == "aborted":  # the abort won: the job signed nothing, the traffic is on stable
        assert resumed.code in (1, 2) and not (signed / VSA).exists(), resumed.out + resumed.err
        assert weights(signed)[-1] == "0 blue green"
    else:  # the finish won: the abort moved nothing
        assert status["state"] == "finished" and abort.returncode == 2
        assert weights(signed)[-1] == "100 blue green"


def test_of_two_resumes_at_once_one_goes_on_and_the_other_touches_nothing(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, token: None, second: tuple[str, str]
) -> None:
    # the resume that lost sent all traffic back to stable after the other's finish
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 50}, {"weight": 100}])
    slow_traffic(signed, "[ -f slow ] && rm slow", 5)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    (signed / "slow").touch()
    command = [sys.executable, "-m", "pipeline_kit", "rollout", "resume", "--env", "dev", *policy]
    slower = subprocess.Popen(command, cwd=signed, env=job_env(sigstore), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while (signed / "slow").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    faster = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    _, err = slower.communicate(timeout=60)
    assert faster.code == 0 and "rollout: finished" in faster.out, faster.out + faster.err
    assert slower.returncode == 1 and ("went on with the rollout" in err or "was finished while" in err), err
    assert weights(signed)[-1] == "100 blue green"  # the loser leaves the traffic where the finish put it
    assert json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)["state"] == "finished"


def test_a_deploy_killed_leaves_no_signed_arrival_a_line_could_complete(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore
) -> None:
    # killed during its deploy, then one line (`deployed`) took the doubt away: staging passed
    set_deploy(signed, "touch deploying; sleep 60")
    killed_at(["promote", "--to", "dev", *policy], signed, sigstore, signed / "deploying")
    release = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    assert not (signed / VSA).exists()  # no signed arrival
    forge_line(signed, kind="deployed", environment="dev", release=release, details={"exit_code": 0})
    staging = cli(["plan", "--to", "staging", *policy], cwd=signed)
    assert staging.code == 1 and re.search(r"previous-stage +DENY", staging.out), staging.out
    assert cli(["verify", "--env", "dev", *policy], cwd=signed).code == 1


def test_only_the_planner_makes_what_a_vsa_is_signed_on() -> None:
    """A Plan and a Decided cannot be built from a file's or a line's fields: `plan` and `decide`
    alone make them (and `records.sign_vsa` takes nothing else)."""
    from pipeline_kit.gates import GateResult
    from pipeline_kit.promotion.deciding import Decided, Plan
    from tests.conftest import local_release

    passing = [GateResult(gate="signature", verdict="passed", reason="ok", evidence={}, duration_ms=1)]
    with pytest.raises(TypeError, match="made by plan"):
        Plan(local_release(1), "dev", passing)
    with pytest.raises(TypeError, match="made by decide"):
        Decided(None, None, object())  # type: ignore[arg-type]


def forged_start(project: Path, release: str, live: str, stable: str | None, first: bool = False) -> None:
    """A `started` line for `release`, as anyone who can write the ledger may append it, naming
    `live` as the live slot, `stable` as what runs there, or (`first`) nothing."""
    canary = "blue" if live == "green" else "green"
    details = {"state": "started", "step": -1, "weight": 0, "stable_slot": live, "canary_slot": canary}
    details |= {"stable_release": stable, "first": first}
    forge_line(project, kind="rollout", environment="dev", release=release, details=details)


def test_a_forged_start_never_puts_the_canary_on_the_live_slot_nor_the_traffic_on_an_empty_one(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    stable, release = second  # green is live with `stable` (signed); blue never ran anything
    with_rollout(signed, [{"weight": 10}, {"weight": 100}])
    forged_start(signed, release, live="blue", stable=stable)  # blue: the empty slot
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 1 and "says blue is live" in resumed.err, resumed.out + resumed.err
    assert not (signed / "deploys.txt").exists() and weights(signed) == []
    aborted = cli(["rollout", "abort", "--env", "dev", "--reason", "looks stuck", *policy], cwd=signed)
    assert aborted.code == 0, aborted.out + aborted.err
    assert weights(signed) == ["0 blue green"]  # all traffic to green, the slot the signed VSA names


def test_a_deploy_killed_mid_way_makes_rollback_ask_what_runs(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, token: None, second: tuple[str, str]
) -> None:
    # the third release's deploy was killed half done: rollback held the second, which did nothing wrong
    from tests.conftest import another_release

    set_deploy(signed, 'echo "$PIPELINE_KIT_RELEASE_ID" >> deploys.txt')
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0  # no strategy: a plain deploy
    mp = pytest.MonkeyPatch()
    try:
        third = another_release(cli, signed, sigstore, mp)
    finally:
        mp.undo()
    set_deploy(signed, 'echo "$PIPELINE_KIT_RELEASE_ID half" >> deploys.txt; kill -9 $PPID; sleep 5')
    killed = subprocess.run(
        [sys.executable, "-m", "pipeline_kit", "promote", "--to", "dev", *policy],
        cwd=signed,
        env=job_env(sigstore),
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert killed.returncode == -9
    rolled = cli(["rollback", "--env", "dev", "--reason", "something is wrong", *policy], cwd=signed)
    assert rolled.code == 1 and f"the deploy of {third} to dev did not finish" in rolled.err, rolled.err
    assert f"--from {third}" in rolled.err
