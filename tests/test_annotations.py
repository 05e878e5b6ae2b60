"""Deploys on dashboards: arrivals, rollbacks and rollout steps pushed to a real Pushgateway and
read back from the real Prometheus that scrapes it; a Pushgateway that cannot take them never
blocks a promotion, and says so."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_kit.metrics.pushgateway import Gauge, Pushgateway, exposition, group_path
from tests.conftest import LEDGER, Cli, another_release
from tests.prometheus_instance import free_port
from tests.pushgateway_instance import LocalPushgateway
from tests.sigstore_instance import LocalSigstore
from tests.test_promote import good_then_bad_in_dev
from tests.test_rollout import with_rollout


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPushgateway]:
    instance = LocalPushgateway(tmp_path_factory.mktemp("pushgateway")).start()
    yield instance
    instance.stop()


def announce_to(project: Path, url: str, **extra: Any) -> str:
    """Configure `annotations:` with a job name of the test's own (the Pushgateway is shared)."""
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    job = f"kit-{project.parent.name}"[:100]
    config["annotations"] = {"url": url, "job": job, **extra}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return job


def entries(project: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (project / LEDGER).read_text().splitlines()]


def epoch(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def test_arrivals_and_a_rollback_reach_a_promql_query(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    pushgateway: LocalPushgateway,
) -> None:
    job = announce_to(signed, pushgateway.url)
    good, bad = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)
    arrival = f'pipeline_kit_event_timestamp_seconds{{job="{job}",environment="dev",event="arrival"}}'
    [found] = pushgateway.until(f"{arrival} and on(release) {arrival.replace('}', f',release={bad!r}}}')}")
    arrived = [e for e in entries(signed) if e["release"] == bad and e["kind"] in ("promoted", "deployed")][-1]
    assert found["metric"]["release"] == bad and found["metric"]["seq"] == str(arrived["seq"])
    assert float(found["value"][1]) == epoch(arrived)

    result = cli(["rollback", "--env", "dev", "--reason", "500s after deploy", *policy], cwd=signed)
    assert result.code == 0, result.err
    assert "warning" not in result.err
    query = f'pipeline_kit_event_timestamp_seconds{{job="{job}",environment="dev",event="rollback"}}'
    [rollback] = pushgateway.until(query)
    rolled = [e for e in entries(signed) if e["kind"] == "rolled-back"][-1]
    assert rollback["metric"]["release"] == bad and rollback["metric"]["to"] == good
    assert float(rollback["value"][1]) == epoch(rolled)


def test_a_rollout_step_reaches_a_promql_query(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    pushgateway: LocalPushgateway,
) -> None:
    job = announce_to(signed, pushgateway.url)
    with_rollout(signed, [{"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0  # the first: all at once
    release = another_release(cli, signed, sigstore, monkeypatch)
    with_rollout(signed, [{"weight": 30}, {"weight": 100}])
    stepped = cli(["promote", "--to", "dev", "--step", *policy], cwd=signed)
    assert stepped.code == 0, stepped.out + stepped.err
    weight = f'pipeline_kit_rollout_weight_percent{{job="{job}",environment="dev",event="rollout"}}'
    # the step's push and the pause's both say 30%: a scrape may fall between them, so wait for the pause
    paused = weight.replace('"rollout"}', '"rollout",state="paused"}')
    [found] = pushgateway.until(f"{paused} == 30")
    rollout = [e for e in entries(signed) if e["kind"] == "rollout"]
    # step 1 set 30%, then --step paused there: the group holds the newest
    assert [(e["details"]["state"], e["details"]["weight"]) for e in rollout[-3:]] == [
        ("started", 0),
        ("step", 30),
        ("paused", 30),
    ]
    step = rollout[-1]
    assert found["metric"]["release"] == release and found["metric"]["state"] == "paused"
    assert found["metric"]["seq"] == str(step["seq"])
    [number] = pushgateway.query(weight.replace("rollout_weight_percent", "rollout_step"))
    assert number["value"][1] == "1"


def test_an_unreachable_pushgateway_never_blocks_and_is_said(
    cli: Cli, signed: Path, policy: list[str], token: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    announce_to(signed, closed, timeout=2.0)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for name, value in {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "a/b",
        "GITHUB_SHA": "0" * 40,
    }.items():
        monkeypatch.setenv(name, value)
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 0, result.err
    seq = entries(signed)[-1]["seq"]
    line = f"warning: the arrival in dev (ledger seq {seq}) was not published: {closed}: "
    assert line in result.err, result.err
    assert "> **warning:** the arrival in dev" in summary.read_text()


def test_a_missing_token_is_said_and_a_set_one_is_sent_never_shown(
    cli: Cli, signed: Path, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Authorization", ""), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        announce_to(signed, f"http://127.0.0.1:{server.server_port}", **{"token-variable": "PUSH_TOKEN"})
        monkeypatch.delenv("PUSH_TOKEN", raising=False)
        first = cli(["promote", "--to", "dev", *policy], cwd=signed)
        assert first.code == 0 and "the variable PUSH_TOKEN is not set" in first.err, first.err
        assert seen == []
        monkeypatch.setenv("PUSH_TOKEN", "s3cr3t-push-token")
        # the deploy command, a child process, never sees the token
        second = cli(["promote", "--to", "dev", *policy, "--", "sh", "-c", "env > child-env.txt"], cwd=signed)
        assert second.code == 0 and "warning" not in second.err, second.err
    finally:
        server.shutdown()
    [(path, auth, body)] = seen
    assert auth == "Bearer s3cr3t-push-token"
    assert "s3cr3t" not in second.out + second.err
    child = (signed / "child-env.txt").read_text()
    assert "PATH=" in child and "s3cr3t" not in child and "PUSH_TOKEN" not in child
    assert path.endswith("/environment@base64/ZGV2/event@base64/YXJyaXZhbA==")  # dev, arrival
    assert b"# TYPE pipeline_kit_event_timestamp_seconds gauge" in body


def test_label_values_and_grouping_values_cannot_escape() -> None:
    hostile = 'x"} 1\nevil_metric{a="b'
    text = exposition([Gauge("m", 2.0, {"release": hostile})]).decode()
    assert text.splitlines() == ["# TYPE m gauge", 'm{release="x\\"} 1\\nevil_metric{a=\\"b"} 2.0']
    # a value with a slash or dots stays one path segment
    assert group_path("j", {"environment": "../../x/y"}) == "/metrics/job@base64/ag==/environment@base64/Li4vLi4veC95"
    assert group_path("j", {"environment": ""}).endswith("/environment@base64/=")


def test_a_pushgateway_that_refuses_is_one_line(pushgateway: LocalPushgateway) -> None:
    # the real Pushgateway refuses a group without a job name (the config never has one)
    refused = Pushgateway(pushgateway.url, "").replace({"environment": "a"}, [Gauge("kit_test_refused", 1.0)])
    assert refused is not None and refused.startswith(f"{pushgateway.url}: HTTP 400: "), refused
    assert "\n" not in refused


def test_a_silent_pushgateway_costs_one_timeout_per_job(tmp_path: Path) -> None:
    """A Pushgateway that takes the connection and never answers: the push ends at its deadline,
    said; the next event does not wait for it again."""
    from pipeline_kit.ledger import Draft, FileLedger
    from pipeline_kit.promotion.announcing import AnnouncingLedger

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    said: list[str] = []
    gateway = Pushgateway(f"http://127.0.0.1:{listener.getsockname()[1]}", "kit", timeout=0.5)
    ledger = AnnouncingLedger(FileLedger(tmp_path / "ledger.jsonl"), gateway, said.append)
    now = datetime.now(timezone.utc)
    for release in ("a" * 32, "b" * 32):
        ledger.append(Draft(kind="promoted", environment="dev", release=release, actor="t", time=now))
    assert said == [
        f"the arrival in dev (ledger seq 1) was not published: {gateway.url}: timed out: no complete answer within 0.5s",
        "the arrival in dev (ledger seq 2) was not published: not asked again after it failed: "
        f"{gateway.url}: timed out: no complete answer within 0.5s",
    ]
    assert len(accepted) == 1
    assert [e.seq for e in FileLedger(tmp_path / "ledger.jsonl").verify()] == [1, 2]  # recorded all the same
    listener.close()


def test_a_ca_file_that_cannot_be_read_is_said_and_never_blocks(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    # publishing is best effort: a CA bundle missing or not PEM must not stop the promotion
    (signed / "not-a-ca.pem").write_text("not a certificate\n")
    for ca_file, why in (("missing-ca.pem", "No such file"), ("not-a-ca.pem", "no certificate or crl found")):
        announce_to(signed, f"https://127.0.0.1:{free_port()}", **{"ca-file": str(signed / ca_file)})
        result = cli(["promote", "--to", "dev", *policy], cwd=signed)
        assert result.code == 0, result.err
        seq = entries(signed)[-1]["seq"]
        assert f"warning: the arrival in dev (ledger seq {seq}) was not published: " in result.err, result.err
        assert why in result.err and "internal error" not in result.err, result.err
