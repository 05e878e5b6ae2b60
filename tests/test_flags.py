"""Kill switches by hand (`pipeline-kit flags`) on a flagd file and on Unleash's admin API, and the
flag failure modes users hit in the anchor tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import LEDGER, Cli
from tests.forge_fakes import UnleashFake
from tests.test_analysis import FLAGS, evaluate_flag


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


def test_unleash_kill_switch_through_the_admin_api(cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = UnleashFake("admin-token-1", {("new-checkout", "production"): True}).start()
    try:
        config_path = hello / "pipeline-kit.yml"
        config = yaml.safe_load(config_path.read_text())
        config["flags"] = {"type": "unleash", "url": fake.url, "environments": {"prod": "production"}}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        monkeypatch.delenv("UNLEASH_ADMIN_TOKEN", raising=False)
        missing = cli(["flags", "kill", "new-checkout", "--env", "prod", "--reason", "x"], cwd=hello)
        assert missing.code == 3 and "UNLEASH_ADMIN_TOKEN is not set" in missing.err
        monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", "admin-token-1")
        killed = cli(["flags", "kill", "new-checkout", "--env", "prod", "--reason", "x"], cwd=hello)
        assert killed.code == 0, killed.err
        assert fake.flags[("new-checkout", "production")] is False
        unknown = cli(["flags", "kill", "nope", "--env", "prod", "--reason", "x"], cwd=hello)
        assert unknown.code == 3 and "HTTP 404" in unknown.err
        monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", "wrong")
        refused = cli(["flags", "restore", "new-checkout", "--env", "prod", "--reason", "x"], cwd=hello)
        assert refused.code == 3 and "HTTP 401" in refused.err
        assert fake.flags[("new-checkout", "production")] is False
        assert fake.violations == []
    finally:
        fake.stop()
