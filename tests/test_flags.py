"""Kill switches by hand (`pipeline-kit flags`) on a flagd file and on a real Unleash server
(tests/unleash_instance.py: the flag read as an application reads it, through Unleash's SDK), and
the flag failure modes users hit in the anchor tools."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml

from tests.conftest import LEDGER, Cli
from tests.hostile_http import answering
from tests.test_analysis import FLAGS, evaluate_flag
from tests.unleash_instance import LocalUnleash


def flagd_project(project: Path) -> Path:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["flags"] = {"type": "flagd", "path": "deploy/flags.json"}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (project / "deploy").mkdir()
    flags = project / "deploy" / "flags.json"
    flags.write_text(json.dumps(FLAGS, indent=2))
    return flags


def test_kill_then_restore_by_hand_is_recorded_and_restores_exactly(cli: Cli, hello: Path) -> None:
    flags = flagd_project(hello)
    before = json.loads(flags.read_text())
    killed = cli(["flags", "kill", "new-checkout", "--env", "prod", "--reason", "INC-7: checkout 500s"], cwd=hello)
    assert killed.code == 0, killed.err
    assert "new-checkout off in flags.json" in killed.out
    # off for everyone: not DISABLED (which hands back each caller's code default, here True)
    assert evaluate_flag(flags, tier="beta") is False and evaluate_flag(flags) is False
    assert json.loads(flags.read_text())["flags"]["new-checkout"]["state"] == "ENABLED"
    restored = cli(["flags", "restore", "new-checkout", "--env", "prod", "--reason", "fixed in 1.2.1"], cwd=hello)
    assert restored.code == 0, restored.err
    assert json.loads(flags.read_text()) == before  # exactly what was there
    entries = [json.loads(line) for line in (hello / LEDGER).read_text().splitlines()]
    assert [(e["kind"], e["details"]["flag"], e["reason"]) for e in entries] == [
        ("flag-killed", "new-checkout", "INC-7: checkout 500s"),
        ("flag-restored", "new-checkout", "fixed in 1.2.1"),
    ]


@pytest.mark.parametrize(
    ("flag", "content", "message"),
    [
        # a missing flag must not look like a switched-off one (js-sdk-contrib#1581)
        ("old-checkout", None, "flags.old-checkout: no such flag with variants (flags here: new-checkout)"),
        ("new-checkout", {"flags": {"new-checkout": {"variants": {"a": 1, "b": 2}}}}, "no off variant"),
        ("new-checkout", "{not json", "not JSON"),
    ],
)
def test_a_kill_that_cannot_be_done_says_why_and_leaves_the_file(
    cli: Cli, hello: Path, flag: str, content: object, message: str
) -> None:
    flags = flagd_project(hello)
    if content is not None:
        flags.write_text(content if isinstance(content, str) else json.dumps(content))
    before = flags.read_bytes()
    result = cli(["flags", "kill", flag, "--env", "prod", "--reason", "x"], cwd=hello)
    assert result.code == 2 and message in result.err, result.err
    assert flags.read_bytes() == before
    assert not (hello / LEDGER).exists()  # nothing happened, nothing recorded


def unleash_project(project: Path, url: str, environments: dict[str, str] | None = None) -> None:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["flags"] = {"type": "unleash", "url": url, "environments": environments or {"prod": "production"}}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def unleash_ready(project: Path, unleash: LocalUnleash, monkeypatch: pytest.MonkeyPatch, *on_in: str) -> str:
    """A new flag on in `on_in`, the project's `flags:` on this Unleash, the admin token set."""
    flag = unleash.create_flag(on_in=on_in)
    unleash_project(project, unleash.url)
    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", unleash.admin_token)
    return flag


def test_unleash_kill_and_restore_as_an_application_sees_it(
    cli: Cli, hello: Path, unleash: LocalUnleash, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = unleash.create_flag(on_in=("production", "development"), beta_only=True)
    strategies = unleash.admin("GET", f"/api/admin/projects/default/features/{flag}/environments/production")[1]
    unleash_project(hello, unleash.url)
    # the application's view before: on for beta users only (the oracle can tell both answers)
    assert unleash.seen_by_app(flag, "production", True, tier="beta") is True
    assert unleash.seen_by_app(flag, "production", False) is False
    monkeypatch.delenv("UNLEASH_ADMIN_TOKEN", raising=False)
    missing = cli(["flags", "kill", flag, "--env", "prod", "--reason", "x"], cwd=hello)
    assert missing.code == 3 and "UNLEASH_ADMIN_TOKEN is not set" in missing.err

    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", unleash.admin_token)
    killed = cli(["flags", "kill", flag, "--env", "prod", "--reason", "INC-7: checkout 500s"], cwd=hello)
    assert killed.code == 0, killed.err
    assert f"{flag} off in Unleash environment production (project default)" in killed.out
    assert unleash.enabled(flag, "production") is False
    assert unleash.tags(flag) == ["simple:pipeline-kit-off:production"]
    assert unleash.seen_by_app(flag, "production", False, tier="beta") is False
    # one environment only: the same flag in development is untouched
    assert unleash.enabled(flag, "development") is True
    assert unleash.seen_by_app(flag, "development", True, tier="beta") is True
    again = cli(["flags", "kill", flag, "--env", "prod", "--reason", "INC-7 again"], cwd=hello)
    assert again.code == 0 and "already off" in again.out and "(turned off by pipeline-kit)" in again.out

    # a wrong token and an SDK (backend) token are refused by Unleash, and nothing changes
    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", "*:*.wrong")
    refused = cli(["flags", "restore", flag, "--env", "prod", "--reason", "x"], cwd=hello)
    assert refused.code == 3 and "HTTP 401: You must log in" in refused.err, refused.err
    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", unleash.client_tokens["production"])
    wrong_kind = cli(["flags", "restore", flag, "--env", "prod", "--reason", "x"], cwd=hello)
    assert wrong_kind.code == 3 and "HTTP 403: invalid token" in wrong_kind.err, wrong_kind.err
    assert unleash.enabled(flag, "production") is False

    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", unleash.admin_token)
    restored = cli(["flags", "restore", flag, "--env", "prod", "--reason", "fixed in 1.2.1"], cwd=hello)
    assert restored.code == 0, restored.err
    assert unleash.seen_by_app(flag, "production", True, tier="beta") is True
    assert unleash.seen_by_app(flag, "production", False) is False  # its strategy kept: still beta only
    assert unleash.admin("GET", f"/api/admin/projects/default/features/{flag}/environments/production")[1] == strategies
    assert unleash.tags(flag) == []
    entries = [json.loads(line) for line in (hello / LEDGER).read_text().splitlines()]
    assert [(e["kind"], e["details"]["switches"], e["reason"]) for e in entries] == [
        ("flag-killed", "unleash", "INC-7: checkout 500s"),
        ("flag-killed", "unleash", "INC-7 again"),
        ("flag-restored", "unleash", "fixed in 1.2.1"),
    ]
    said = "".join(r.out + r.err for r in (missing, killed, again, refused, wrong_kind, restored))
    assert unleash.admin_token.split(".")[1] not in said + (hello / LEDGER).read_text()
    # killed again, then turned back on in Unleash by hand: a restore finds it on and clears the tag
    assert cli(["flags", "kill", flag, "--env", "prod", "--reason", "INC-11"], cwd=hello).code == 0
    unleash.admin("POST", f"/api/admin/projects/default/features/{flag}/environments/production/on")
    by_hand = cli(["flags", "restore", flag, "--env", "prod", "--reason", "on by hand"], cwd=hello)
    assert by_hand.code == 0 and f"{flag} already on in Unleash environment production" in by_hand.out
    assert unleash.tags(flag) == [] and unleash.enabled(flag, "production") is True


def test_unleash_leaves_a_flag_that_was_off_before_off_after_a_restore(
    cli: Cli, hello: Path, unleash: LocalUnleash, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unleash keeps no state before a kill: a restore that only switched "on" would turn on a
    # feature someone had deliberately left off (an unfinished one) once the incident is over
    flag = unleash_ready(hello, unleash, monkeypatch, "development")
    killed = cli(["flags", "kill", flag, "--env", "prod", "--reason", "INC-8"], cwd=hello)
    assert killed.code == 0, killed.err
    assert "already off in Unleash environment production" in killed.out and "restore will leave it off" in killed.out
    assert unleash.tags(flag) == []
    restored = cli(["flags", "restore", flag, "--env", "prod", "--reason", "over"], cwd=hello)
    assert restored.code == 2 and "was not turned off by pipeline-kit" in restored.err, restored.err
    assert unleash.enabled(flag, "production") is False
    assert unleash.seen_by_app(flag, "production", False) is False


def test_a_kill_whose_tag_cannot_be_written_still_turns_the_flag_off(
    cli: Cli, hello: Path, unleash_alone: LocalUnleash, monkeypatch: pytest.MonkeyPatch
) -> None:
    # in an incident the flag off matters more than the marker; without the marker the restore is
    # Unleash's to do by hand. The tag type gone makes Unleash refuse the tag (for every flag: the
    # server is the run's, so no test of another worker uses it meanwhile, and the type is put
    # back whatever happens).
    unleash = unleash_alone
    flag = unleash_ready(hello, unleash, monkeypatch, "production")
    unleash.admin("DELETE", "/api/admin/tag-types/simple")
    try:
        killed = cli(["flags", "kill", flag, "--env", "prod", "--reason", "INC-10"], cwd=hello)
    finally:
        simple = {"name": "simple", "description": "Used to simplify filtering of features", "icon": "#"}
        unleash.admin("POST", "/api/admin/tag-types", simple, expect=201)
    assert killed.code == 0, killed.err
    assert (
        f"{flag} off in Unleash environment production (project default); unleash: marking {flag} failed: "
        in killed.out
    )
    assert "HTTP 400" in killed.out and "restore it in Unleash by hand" in killed.out
    assert unleash.enabled(flag, "production") is False and unleash.tags(flag) == []
    restored = cli(["flags", "restore", flag, "--env", "prod", "--reason", "over"], cwd=hello)
    assert restored.code == 2 and "was not turned off by pipeline-kit" in restored.err
    assert unleash.enabled(flag, "production") is False


def test_unleash_refusals_name_the_cause_and_change_nothing(
    cli: Cli, hello: Path, unleash: LocalUnleash, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = unleash.create_flag(on_in=("production",))
    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", unleash.admin_token)
    cases = [
        ({"prod": "production"}, "nope", 'HTTP 404: There\'s no feature named "nope" in project "default"'),
        ({"prod": "staging"}, flag, f"reading {flag} in staging failed: HTTP 404: Could not find {flag} in staging"),
    ]
    for environments, name, message in cases:
        unleash_project(hello, unleash.url, environments)
        result = cli(["flags", "kill", name, "--env", "prod", "--reason", "x"], cwd=hello)
        assert result.code == 3 and message in result.err, result.err
    unleash_project(hello, f"http://127.0.0.1:{unleash.postgres.port}")  # not even HTTP
    unreachable = cli(["flags", "kill", flag, "--env", "prod", "--reason", "x"], cwd=hello)
    assert unreachable.code == 3 and f"unleash: reading {flag} in production failed" in unreachable.err
    assert unleash.enabled(flag, "production") is True and unleash.tags(flag) == []
    assert not (hello / LEDGER).exists()


def test_a_server_that_is_not_unleash_is_no_kill(cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a captive portal or a wrong URL answering 200 to everything must not read as "turned off"
    with answering(200, b"<html>Welcome</html>", "text/html") as url:
        unleash_project(hello, url)
        monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", "*:*.secret")
        result = cli(["flags", "kill", "new-checkout", "--env", "prod", "--reason", "x"], cwd=hello)
    assert result.code == 3 and "the answer is not JSON (is the URL Unleash's?)" in result.err
    assert not (hello / LEDGER).exists()


@pytest.mark.parametrize("status", [200, 500])
def test_a_hostile_server_nesting_its_answer_deeply_is_a_failure_not_a_crash(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    # JSON nested deeper than Python's recursion limit (well within the answer's size bound): an
    # uncaught RecursionError would escape the kill switches' error handling, and a failed
    # analysis would never reach its rollback
    nested = b"[" * 100_000 + b"]" * 100_000
    with answering(status, b'{"message": ' + nested + b"}" if status != 200 else nested) as url:
        unleash_project(hello, url)
        monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", "*:*.secret")
        result = cli(["flags", "kill", "new-checkout", "--env", "prod", "--reason", "x"], cwd=hello)
    assert result.code == 3, result.err
    assert "internal error" not in result.err and "RecursionError" not in result.err, result.err
    said = "the answer is not JSON" if status == 200 else f"failed: HTTP {status}"
    assert f"unleash: reading new-checkout in production{'' if status == 200 else ' '}" in result.err
    assert said in result.err, result.err
    assert not (hello / LEDGER).exists()


def test_a_hostile_servers_status_line_reaches_no_terminal_as_escapes(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # not HTTP: a status line carrying terminal escapes (a window title, colours), quoted by the
    # HTTP library in its error; the message names it, printable
    import socket

    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"\x1b]0;owned\x07\x1b[31mHTTP/1.1 200 OK\r\n\r\n")
        connection.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        unleash_project(hello, f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", "*:*.secret")
        result = cli(["flags", "kill", "new-checkout", "--env", "prod", "--reason", "x"], cwd=hello)
    finally:
        server.close()
    assert result.code == 3 and "unleash: reading new-checkout in production failed: " in result.err, result.err
    assert "\x1b" not in result.err and "\x07" not in result.err and "owned" in result.err, result.err


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1", "https://[::1"])
def test_an_unleash_url_no_connection_can_be_made_to_is_a_failure_not_a_crash(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # a port out of range, an unclosed IPv6 address: a failure of the kill switch (what a failed
    # analysis tries before its rollback), or of the config where it can tell; never an internal error
    unleash_project(hello, url)
    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", "*:*.secret")
    result = cli(["flags", "kill", "new-checkout", "--env", "prod", "--reason", "x"], cwd=hello)
    if url == "http://[::1":  # checked at load: would the token go in the clear?
        assert result.code == 2 and "flags: http://[::1: not a URL" in result.err, result.err
    else:
        assert result.code == 3 and "unleash: reading new-checkout in production failed: " in result.err, result.err
    assert "internal error" not in result.err
