"""Progressive rollouts with the command traffic provider: the weights in order, a failing canary
sent back to 0 at once, a rollout killed with SIGKILL and resumed from the step it was in."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LEDGER, Cli, another_release, forge_line, job_env
from tests.nginx_instance import Backend, LocalNginx
from tests.prometheus_instance import Exporter
from tests.sigstore_instance import LocalSigstore
from tests.test_analysis import ERROR_RATIO, FLAGS, evaluate_flag

SLOTS = {"blue": "127.0.0.1:8001", "green": "127.0.0.1:8002"}


def with_rollout(project: Path, steps: list[dict[str, Any]], analysis: dict[str, Any] | None = None) -> None:
    """dev rolls out by `steps`; the traffic command and the deploy command log what they were told."""
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    dev = config["environments"]["dev"]
    dev["deploy"] = 'echo "$PIPELINE_KIT_SLOT $PIPELINE_KIT_SLOT_ADDRESS $PIPELINE_KIT_RELEASE_ID" >> deploys.txt'
    dev["strategy"] = {"canary": {"steps": steps}}
    dev["traffic"] = {
        "type": "command",
        "command": 'echo "$PIPELINE_KIT_CANARY_WEIGHT $PIPELINE_KIT_CANARY_SLOT $PIPELINE_KIT_STABLE_SLOT" >> weights.txt',
        "slots": SLOTS,
    }
    if analysis is not None:
        dev["analysis"] = analysis
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def weights(project: Path) -> list[str]:
    path = project / "weights.txt"
    return path.read_text().splitlines() if path.is_file() else []


def ledger(project: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (project / LEDGER).read_text().splitlines()]


def roll_out_first(
    cli: Cli, project: Path, policy: list[str], sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """dev's first rollout (nothing ran there: all traffic to green at once, as Argo Rollouts
    does on a first deploy), then a second release built and signed; the logs start empty again.
    Returns (the release live in green, the new one)."""
    live = json.loads((project / ".pipeline-kit" / "release.json").read_text())["id"]
    first = cli(["promote", "--to", "dev", *policy], cwd=project)
    assert first.code == 0 and "rollout: finished" in first.out, first.out + first.err
    for log in ("weights.txt", "deploys.txt"):
        (project / log).unlink(missing_ok=True)
    return live, another_release(cli, project, sigstore, monkeypatch)


@pytest.fixture
def second(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, token: None
) -> tuple[str, str]:
    """dev runs a first release in green (rolled out with the command provider); a second is signed."""
    with_rollout(signed, [{"weight": 100}])
    return roll_out_first(cli, signed, policy, sigstore, monkeypatch)


def test_the_first_rollout_sends_no_traffic_to_an_empty_slot(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    # nothing ran in dev: 10% to the release and the rest to an empty slot would fail 90% of requests
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 50}, {"weight": 100}])
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 0 and "rollout: finished" in result.out, result.out + result.err
    assert weights(signed) == ["100 green blue"]
    status = json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)
    assert status["first"] is True and status["stable_release"] is None and status["state"] == "finished"


def test_a_healthy_canary_is_told_each_weight_in_order_and_ends_at_100(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    stable, release = second
    with_rollout(signed, [{"weight": 5}, {"weight": 25}, {"weight": 50}, {"weight": 100}])
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 0, result.out + result.err
    # green is live (the first rollout's): the canary goes to blue
    assert (signed / "deploys.txt").read_text().split() == ["blue", SLOTS["blue"], release]
    assert weights(signed) == ["5 blue green", "25 blue green", "50 blue green", "100 blue green"]
    assert "rollout: finished" in result.out
    status = json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)
    assert status["state"] == "finished" and status["weight"] == 100 and status["canary_slot"] == "blue"
    assert status["stable_release"] == stable and status["first"] is False
    states = [e["details"]["state"] for e in ledger(signed) if e["kind"] == "rollout"]
    assert states[-6:] == ["started", "step", "step", "step", "step", "finished"]
    assert (signed / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").is_file()


def test_manual_pause_and_step_mode_need_a_call_each(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    with_rollout(signed, [{"weight": 10, "pause": "manual"}, {"weight": 50}, {"weight": 100}])
    first = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert (
        first.code == 0 and "rollout: paused: at step 1 (10%), waiting for pipeline-kit rollout resume" in first.out
    ), first.out + first.err
    assert weights(signed) == ["10 blue green"]
    # a second promotion while this one waits is refused: one rollout per environment
    again = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert again.code == 2 and "a rollout of" in again.err and "is paused in dev" in again.err
    stepped = cli(["rollout", "resume", "--env", "dev", "--step", *policy], cwd=signed)
    assert stepped.code == 0 and "step 2 of 3 done" in stepped.out, stepped.out + stepped.err
    assert weights(signed)[-1] == "50 blue green"
    done = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert done.code == 0 and "rollout: finished" in done.out
    assert weights(signed) == ["10 blue green", "50 blue green", "100 blue green"]


def test_abort_sends_everything_back_to_stable(
    cli: Cli, signed: Path, policy: list[str], token: None, second: tuple[str, str]
) -> None:
    with_rollout(signed, [{"weight": 20, "pause": "manual"}, {"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    aborted = cli(["rollout", "abort", "--env", "dev", "--reason", "wrong build", *policy], cwd=signed)
    assert aborted.code == 0, aborted.err
    assert weights(signed) == ["20 blue green", "0 blue green"]
    assert json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)["state"] == "aborted"
    assert cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed).code == 2  # nothing in progress


def test_a_rollout_killed_mid_pause_resumes_from_its_step(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], second: tuple[str, str]
) -> None:
    with_rollout(signed, [{"weight": 10, "pause": "30s"}, {"weight": 100}])
    env = job_env(sigstore)
    job = subprocess.Popen(
        [sys.executable, "-m", "pipeline_kit", "promote", "--to", "dev", *policy],
        cwd=signed,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while weights(signed) != ["10 blue green"] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # in its pause now
    job.send_signal(signal.SIGKILL)  # the CI job times out or the runner dies
    job.wait()
    status = json.loads(cli(["rollout", "status", "--env", "dev", "--json"], cwd=signed).out)
    assert status["state"] == "step" and status["step"] == 0 and status["weight"] == 10
    # shorten the pause for the resumed run (the step itself runs again from its start)
    with_rollout(signed, [{"weight": 10, "pause": "1s"}, {"weight": 100}])
    os.environ["SIGSTORE_IDENTITY_TOKEN"] = env["SIGSTORE_IDENTITY_TOKEN"]
    try:
        resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    finally:
        del os.environ["SIGSTORE_IDENTITY_TOKEN"]
    assert resumed.code == 0 and "rollout: finished" in resumed.out, resumed.out + resumed.err
    assert weights(signed) == ["10 blue green", "10 blue green", "100 blue green"]  # never from the start
    assert len((signed / "deploys.txt").read_text().splitlines()) == 1  # deployed once


def test_a_failing_canary_goes_to_zero_right_after_its_failing_analysis(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    live: tuple[Exporter, Any],
) -> None:
    exporter, prometheus = live
    analysis = {
        "provider": "prometheus",
        "interval": "2s",
        "count": 2,
        "inconclusive-limit": 2,
        "checks": [{"name": "error-ratio", "query": ERROR_RATIO, "max": 0.01}],
    }
    with_rollout(signed, [{"weight": 50}, {"weight": 100}], analysis)
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"prometheus": {"type": "prometheus", "url": prometheus.url, "timeout": 2.0}}
    config["flags"] = {"type": "flagd", "path": "deploy/flags.json"}
    config["environments"]["dev"]["on-failure"] = {"kill-switches": ["new-checkout"]}
    # the exporter serves the release the canary slot runs
    config["environments"]["dev"]["deploy"] = f'echo "$PIPELINE_KIT_RELEASE_ID" > {exporter.deployed}'
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (signed / "deploy").mkdir()
    (signed / "deploy" / "flags.json").write_text(json.dumps(FLAGS))
    first = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert first.code == 0, first.out + first.err
    good = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    assert weights(signed) == ["100 green blue"]  # a first rollout: all at once

    bad = another_release(cli, signed, sigstore, monkeypatch)
    exporter.ratios[bad] = 0.3
    second = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert second.code == 1, second.out + second.err
    # blue was idle: the canary went there, got 50%, failed its analysis, and got 0 at once
    assert weights(signed)[1:] == ["50 blue green", "0 blue green"]
    entries = ledger(signed)
    failed = next(e for e in reversed(entries) if e["kind"] == "rollout")
    assert failed["details"]["state"] == "failed" and failed["details"]["weight"] == 0
    kinds = [e["kind"] for e in entries[entries.index(failed) :]]
    assert kinds == ["rollout", "flag-killed", "rolled-back"]
    assert entries[-1]["details"]["from"] == bad and entries[-1]["details"]["to"] == good
    assert evaluate_flag(signed / "deploy" / "flags.json", tier="beta") is False
    held = cli(["plan", "--to", "dev", *policy], cwd=signed)
    assert held.code == 1 and "rolled back from dev" in held.out


@pytest.fixture
def nginx_slots(tmp_path: Path, signed: Path) -> Iterator[tuple[LocalNginx, Path]]:
    """nginx in front of a blue and a green backend; blue runs `v0` and takes all traffic."""
    slots = signed / "slots"
    slots.mkdir()
    (slots / "blue").write_text("v0")
    backends = {name: Backend(slots / name) for name in ("blue", "green")}
    upstream = signed / "deploy" / "upstream.conf"
    upstream.parent.mkdir(exist_ok=True)
    upstream.write_text(f"upstream pipeline_kit {{ server {backends['blue'].address}; }}\n")
    nginx = LocalNginx(tmp_path / "nginx", upstream).start()
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"].update(
        deploy='echo "$PIPELINE_KIT_RELEASE_ID" > "slots/$PIPELINE_KIT_SLOT"',
        traffic={
            "type": "nginx",
            "upstream-file": "deploy/upstream.conf",
            "test": nginx.test_command,
            "reload": nginx.reload_command,
            "slots": {name: backend.address for name, backend in backends.items()},
        },
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    yield nginx, slots
    nginx.stop()
    for backend in backends.values():
        backend.stop()


def set_steps(project: Path, steps: list[dict[str, Any]]) -> None:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["strategy"] = {"canary": {"steps": steps}}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_nginx_splits_traffic_by_the_steps_weights(
    cli: Cli,
    signed: Path,
    policy: list[str],
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
    token: None,
    nginx_slots: tuple[LocalNginx, Path],
) -> None:
    nginx, _ = nginx_slots
    set_steps(signed, [{"weight": 100}])
    assert nginx.count(20) == {"v0": 20}
    stable, release = roll_out_first(cli, signed, policy, sigstore, monkeypatch)
    time.sleep(0.2)
    assert nginx.count(20) == {stable: 20}  # the first rollout: all to green at once
    set_steps(signed, [{"weight": 25, "pause": "manual"}, {"weight": 50, "pause": "manual"}, {"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    # nginx's weighted round robin splits exactly (the reference measured 950/50 of 1000), once the
    # reload reached the worker that answers new connections (~14 ms measured)
    time.sleep(0.2)
    at_25 = nginx.count(400)
    assert abs(at_25[release] - 100) <= 8 and at_25[release] + at_25[stable] == 400, at_25
    assert cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed).code == 0
    time.sleep(0.2)
    at_50 = nginx.count(400)
    assert abs(at_50[release] - 200) <= 8 and at_50["failed"] == 0, at_50
    assert cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed).code == 0
    time.sleep(0.2)
    assert nginx.count(100) == {release: 100}  # 100%: one server, the canary


def test_nginx_switch_and_switch_back_lose_no_request(
    cli: Cli,
    signed: Path,
    policy: list[str],
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
    token: None,
    nginx_slots: tuple[LocalNginx, Path],
) -> None:
    nginx, _ = nginx_slots
    set_steps(signed, [{"weight": 100}])
    stable, release = roll_out_first(cli, signed, policy, sigstore, monkeypatch)
    set_steps(signed, [{"weight": 100, "pause": "manual"}])
    answers: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            answers.update(nginx.count(1))

    threading.Thread(target=load, daemon=True).start()
    try:
        time.sleep(0.3)
        assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0  # switch: all to blue
        time.sleep(0.3)
        assert cli(["rollout", "abort", "--env", "dev", "--reason", "switch back", *policy], cwd=signed).code == 0
        time.sleep(0.3)
    finally:
        stop.set()
    assert answers["failed"] == 0 and answers[stable] > 0 and answers[release] > 0, answers
    time.sleep(0.2)
    assert nginx.count(20) == {stable: 20}  # switched back: green again


def test_a_config_nginx_refuses_leaves_the_previous_upstreams(
    cli: Cli, signed: Path, policy: list[str], token: None, nginx_slots: tuple[LocalNginx, Path]
) -> None:
    nginx, _ = nginx_slots
    set_steps(signed, [{"weight": 100}])
    upstream = signed / "deploy" / "upstream.conf"
    before = upstream.read_text()
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["traffic"]["slots"]["green"] = "127.0.0.1:0"  # nginx refuses port 0
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 3 and "nginx config test failed" in result.err, result.err
    assert upstream.read_text() == before and nginx.count(10) == {"v0": 10}


def test_a_canary_slower_than_stable_fails_its_comparison(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    live: tuple[Exporter, Any],
) -> None:
    exporter, prometheus = live
    latency = {
        "name": "latency",
        "query": 'max(request_latency_seconds{release="{{ release }}"})',
        "max": 1.0,  # what judges the first rollout, which has no stable release to compare with
        "compare": {"resolution": "1s", "min-samples": 4},
    }
    analysis = {"provider": "prometheus", "interval": "1s", "count": 5, "checks": [latency]}
    with_rollout(signed, [{"weight": 100}], analysis)
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"prometheus": {"type": "prometheus", "url": prometheus.url, "timeout": 2.0}}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    # the first rollout has no stable release to compare with: judged by its bounds
    good = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    exporter.latency[good] = 0.1
    first = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert first.code == 0, first.out + first.err
    assert "inconclusive: no stable release to compare with (a first rollout)" in first.out + first.err
    bad = another_release(cli, signed, sigstore, monkeypatch)
    exporter.latency[bad] = 0.3  # three times slower than stable, served beside it
    set_steps(signed, [{"weight": 30}, {"weight": 100}])
    second = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert second.code == 1, second.out + second.err
    # each side's median is about, not exactly, what it served (0.3 and 0.1): the samples are rates
    # over scrape windows whose edges fall where the machine's load puts them
    found = re.search(
        r"latency: higher than stable: median ([\d.]+) vs stable ([\d.]+) \(([\d.]+)x, tolerance 1\.1x\)", second.err
    )
    assert found, second.err
    canary, stable, ratio = map(float, found.groups())
    assert abs(canary - 0.3) < 0.03 and abs(stable - 0.1) < 0.01 and 2.5 < ratio < 3.5, second.err
    assert weights(signed)[-2:] == ["30 blue green", "0 blue green"]


def test_the_step_input_reaches_promote_as_its_variable(
    cli: Cli, signed: Path, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch, second: tuple[str, str]
) -> None:
    # what the promote action and the GitLab template set from their `step` input
    with_rollout(signed, [{"weight": 10}, {"weight": 50}, {"weight": 100}])
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_STEP", "true")
    first = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert first.code == 0 and "rollout: stepped: step 1 of 3 done" in first.out, first.out + first.err
    assert weights(signed) == ["10 blue green"]
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_STEP", "false")
    rest = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert rest.code == 0 and weights(signed) == ["10 blue green", "50 blue green", "100 blue green"]


def test_resume_signs_only_what_it_judges_itself(
    cli: Cli, signed: Path, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch, second: tuple[str, str]
) -> None:
    # The attack: a paused rollout's decision file edited to name another environment (or a
    # break-glass one made to say passed); resume signed a PASSED VSA from the file's fields.
    with_rollout(signed, [{"weight": 10}, {"weight": 100}])
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_STEP", "true")
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_STEP", "false")
    path = signed / ".pipeline-kit" / "promotions" / "dev.decision.json"
    forged = json.loads(path.read_text())
    forged["environment"] = "prod"
    path.write_text(json.dumps(forged))
    assert cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed).code == 0
    vsa = json.loads((signed / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").read_text())
    predicate = json.loads(base64.b64decode(vsa["dsseEnvelope"]["payload"]))["predicate"]
    assert predicate["resourceUri"] == "urn:pipeline-kit:environment:dev"
    assert json.loads(path.read_text())["environment"] == "dev"  # the decision taken now
    assert not (signed / ".pipeline-kit" / "promotions" / "prod.vsa.sigstore.json").exists()


def test_resume_of_a_rollout_nobody_started_signs_nothing(
    cli: Cli, described: Path, policy: list[str], token: None
) -> None:
    # The attack: an unsigned build, one appended `rollout started` line and a decision file
    # saying passed; resume signed a PASSED VSA over subjects nobody signed.

    with_rollout(described, [{"weight": 100}])
    release = json.loads((described / ".pipeline-kit" / "release.json").read_text())["id"]
    details = {
        "state": "started",
        "step": -1,
        "weight": 0,
        "stable_slot": "blue",
        "canary_slot": "green",
        "stable_release": None,
        "steps": 1,
    }
    forge_line(
        described,
        kind="rollout",
        environment="dev",
        release=release,
        details=details,
    )
    result = cli(["rollout", "resume", "--env", "dev", *policy], cwd=described)
    assert result.code == 1 and f"{release} would be denied in dev now" in result.err, result.out + result.err
    assert not list((described / ".pipeline-kit").rglob("*.vsa.sigstore.json"))


def test_resume_goes_on_from_signed_steps_never_from_a_ledger_line(
    cli: Cli, signed: Path, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch, second: tuple[str, str]
) -> None:
    # The attack: one appended line says the rollout paused at its last step; resume went
    # straight to its PASSED VSA, the steps between never run, their traffic never set.

    with_rollout(signed, [{"weight": 10}, {"weight": 50}, {"weight": 100}])
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_STEP", "true")
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_STEP", "false")
    release = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    forge_line(
        signed,
        kind="rollout",
        environment="dev",
        release=release,
        details={"state": "paused", "step": 2, "weight": 100},
    )
    resumed = cli(["rollout", "resume", "--env", "dev", *policy], cwd=signed)
    assert resumed.code == 0, resumed.out + resumed.err
    assert weights(signed) == ["10 blue green", "50 blue green", "100 blue green"]  # every step, in order
