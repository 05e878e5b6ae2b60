"""The analysis after a deploy and what a failed one does: measured on a real Prometheus scraping a
live exporter, the kill switch checked by evaluating the flagd file with the OpenFeature flagd
provider and, on a real Unleash, through Unleash's SDK; the rollback and its hold checked in the
ledger and the signed evidence."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from pipeline_kit.analysis import analyse
from pipeline_kit.config import AnalysisConfig
from pipeline_kit.metrics.interface import Measurement, MetricProvider, Series, failed, inconclusive, ok
from tests.conftest import LEDGER, Cli, another_release
from tests.hostile_http import answering
from tests.mermaid_parser import github_summary
from tests.prometheus_instance import Exporter, LocalPrometheus
from tests.sigstore_instance import LocalSigstore
from tests.unleash_instance import LocalUnleash

# -- the rules, on scripted measurements ---------------------------------------------------------


class Scripted(MetricProvider):
    """Answers from a script, one per measurement, in order (the rules are about counting)."""

    name = "scripted"

    def __init__(self, *answers: Measurement) -> None:
        self.answers = list(answers)

    def measure(self, query: str, at: datetime) -> Measurement:
        return self.answers.pop(0)

    def series(self, query: str, start: datetime, end: datetime, step_seconds: float) -> Series:
        return Series((), "not scripted")


def run(config: dict[str, object], *answers: Measurement) -> tuple[str, str, int]:
    settings = AnalysisConfig.model_validate(
        {"provider": "p", "interval": "1s", "checks": [{"name": "errors", "query": "q", "max": 0.01}], **config}
    )
    result = analyse(
        Scripted(*answers), settings, {"release": "r", "digest": "d", "environment": "e"}, sleep=lambda s: None
    )
    return result.verdict, result.reason, result.intervals


def test_the_first_failure_beyond_the_limit_stops_the_analysis() -> None:
    verdict, reason, intervals = run({"count": 5}, ok(0.001), ok(0.05))
    assert (verdict, intervals) == ("failed", 2)  # not the remaining 3 intervals
    assert reason == "1 failed measurement(s), limit 0 (errors: 0.05 above max 0.01)"
    assert run({"count": 3, "failure-limit": 1}, ok(0.05), ok(0.001), ok(0.001))[0] == "passed"


def test_inconclusive_is_counted_apart_and_never_passes() -> None:
    assert run({"count": 2}, inconclusive("no data"), ok(0.001))[:2] == (
        "inconclusive",
        "1 inconclusive measurement(s), limit 0 (errors: inconclusive: no data)",
    )
    assert run({"count": 2, "inconclusive-limit": 1}, inconclusive("NaN"), ok(0.001))[0] == "passed"


def test_every_measurement_an_error_is_never_a_success() -> None:
    # argo-rollouts#4479: an analysis of nothing but errors reported Successful
    verdict, reason, _ = run({"count": 3, "consecutive-error-limit": 4}, *(failed("refused"),) * 3)
    assert verdict == "inconclusive" and reason == "errors never measured a passing value"
    verdict, reason, intervals = run({"count": 5, "consecutive-error-limit": 1}, *(failed("refused"),) * 2)
    assert (verdict, intervals) == ("error", 2)
    assert "2 query errors in a row for errors, limit 1" in reason


def test_an_error_between_passes_is_tolerated_up_to_the_limit() -> None:
    answers = (ok(0.001), failed("timeout"), ok(0.001))
    assert run({"count": 3}, *answers)[0] == "passed"


# -- the real thing -------------------------------------------------------------------------------


ERROR_RATIO = (
    'sum(rate(http_requests_total{release="{{ release }}",code="500"}[10s]))'
    ' / sum(rate(http_requests_total{release="{{ release }}"}[10s]))'
)
FLAGS = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        "new-checkout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
            "targeting": {"if": [{"==": [{"var": "tier"}, "beta"]}, "on", "off"]},
        }
    },
}


def with_analysis(project: Path, prometheus_url: str, deployed: Path) -> None:
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"prometheus": {"type": "prometheus", "url": prometheus_url, "timeout": 2.0}}
    config["flags"] = {"type": "flagd", "path": "deploy/flags.json"}
    config["environments"]["dev"].update(
        deploy=f'echo "$PIPELINE_KIT_RELEASE_ID" > {deployed}',
        analysis={
            "provider": "prometheus",
            "interval": "2s",
            "count": 4,
            "inconclusive-limit": 2,  # a new release's first seconds may have no rate yet
            "checks": [{"name": "error-ratio", "query": ERROR_RATIO, "max": 0.01}],
        },
        **{"on-failure": {"rollback": True, "kill-switches": ["new-checkout"]}},
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (project / "deploy").mkdir(exist_ok=True)
    (project / "deploy" / "flags.json").write_text(json.dumps(FLAGS, indent=2))


def evaluate_flag(path: Path, **context: str) -> bool:
    """The flag's value as a service using OpenFeature's flagd provider (file mode) sees it."""
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext

    api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)))
    try:
        return bool(api.get_client().get_boolean_value("new-checkout", True, EvaluationContext(attributes=context)))
    finally:
        api.shutdown()


def ledger(project: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (project / LEDGER).read_text().splitlines()]


def test_a_bad_release_is_rolled_back_and_its_flag_killed_within_one_interval(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    live: tuple[Exporter, LocalPrometheus],
) -> None:
    exporter, prometheus = live
    deployed = exporter.deployed
    with_analysis(signed, prometheus.url, deployed)
    flags = signed / "deploy" / "flags.json"

    # a healthy release: measured, passed, its VSA signed after the analysis
    first = cli(["promote", "--to", "dev", "--junit", "gates.xml", *policy], cwd=signed)
    assert first.code == 0, first.out + first.err
    good = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    assert "analysis: passed" in first.out and deployed.read_text().strip() == good
    vsa = json.loads((signed / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").read_text())
    statement = json.loads(base64.b64decode(vsa["dsseEnvelope"]["payload"]))
    assert "PIPELINE_KIT_ANALYSIS_PASSED" in statement["predicate"]["verifiedLevels"]
    assert evaluate_flag(flags, tier="beta") is True and evaluate_flag(flags) is False  # on for beta users

    # a bad one: 20% errors once deployed
    bad = another_release(cli, signed, sigstore, monkeypatch)
    exporter.ratios[bad] = 0.2
    second = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert second.code == 1, second.out + second.err
    assert "error: the analysis in dev failed" in second.err
    assert f"rolled dev back from {bad} to {good}" in second.out

    # the deploy target holds the previous release again; the flag is off for everyone
    assert deployed.read_text().strip() == good
    assert evaluate_flag(flags) is False and evaluate_flag(flags, tier="beta") is False
    entries = ledger(signed)
    kinds = [(e["kind"], e["release"]) for e in entries[-6:]]
    assert kinds == [
        ("promoted", bad),
        ("deployed", bad),
        ("analysed", bad),
        ("flag-killed", None),  # the kill switch first: faster than a redeploy
        ("deployed", good),  # the rollback's deploy of the previous release
        ("rolled-back", good),
    ]
    analysed = entries[-4]
    details = analysed["details"]
    assert isinstance(details, dict) and details["verdict"] == "failed" and "vsa" not in details
    record = json.loads((signed / ".pipeline-kit" / "releases" / bad / "promotions" / "dev.analysis.json").read_text())
    failing = next(m for m in record["measurements"] if m["verdict"] == "failed")
    assert failing["value"] == pytest.approx(0.2, rel=0.05)
    # rolled back within one interval (2 s) of the failing measurement (plus the deploy's own time)
    measured = datetime.strptime(failing["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    rolled = datetime.fromisoformat(str(entries[-1]["time"]))
    assert rolled - measured <= timedelta(seconds=2)
    # the rollback is signed (a FAILED VSA about the bad release) and holds it out of dev
    assert (signed / ".pipeline-kit" / "releases" / bad / "promotions" / "dev.rollback.sigstore.json").is_file()
    again = cli(["plan", "--to", "dev", *policy], cwd=signed)
    assert again.code == 1 and "rolled back from dev" in again.out and "ledger annotate --env dev" in again.out
    # and it never carries on: no PASSED VSA of dev exists for it (the analysis did not pass)
    onwards = cli(["plan", "--to", "staging", *policy], cwd=signed)
    assert onwards.code == 1 and "dev never passed this release" in onwards.out


def test_a_failed_analysis_turns_the_unleash_kill_switch_off_for_the_application(
    cli: Cli,
    signed: Path,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    live: tuple[Exporter, LocalPrometheus],
    unleash: LocalUnleash,
) -> None:
    exporter, prometheus = live
    with_analysis(signed, prometheus.url, exporter.deployed)
    flag = unleash.create_flag(on_in=("development", "production"), beta_only=True)
    seen = signed / "deploy-env.txt"
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["flags"] = {"type": "unleash", "url": unleash.url, "environments": {"dev": "development"}}
    dev = config["environments"]["dev"]
    dev["deploy"] = f"env > {seen}; {dev['deploy']}"
    dev["on-failure"] = {"rollback": False, "kill-switches": [flag]}  # the first release: nothing to go back to
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv("UNLEASH_ADMIN_TOKEN", unleash.admin_token)
    bad = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    exporter.ratios[bad] = 0.2
    assert unleash.seen_by_app(flag, "development", True, tier="beta") is True

    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 1, result.out + result.err
    assert "error: the analysis in dev failed" in result.err
    # off for the application in development, even for beta users; production untouched
    assert unleash.seen_by_app(flag, "development", False, tier="beta") is False
    assert unleash.seen_by_app(flag, "production", True, tier="beta") is True
    assert [(e["kind"], e["release"]) for e in ledger(signed)[-3:]] == [
        ("deployed", bad),
        ("analysed", bad),
        ("flag-killed", None),
    ]
    assert ledger(signed)[-1]["details"] == {
        "flag": flag,
        "switches": "unleash",
        "change": f"{flag} off in Unleash environment development (project default) "
        "(tagged simple:pipeline-kit-off:development)",
    }
    # the deploy command ran without the admin token in its environment
    assert "UNLEASH_ADMIN_TOKEN" not in seen.read_text() and unleash.admin_token not in seen.read_text()
    # restored by hand once the cause is known: on again for beta users, as before
    restored = cli(["flags", "restore", flag, "--env", "dev", "--reason", "INC-9 fixed"], cwd=signed)
    assert restored.code == 0, restored.err
    assert unleash.seen_by_app(flag, "development", True, tier="beta") is True
    assert unleash.seen_by_app(flag, "development", False) is False


def test_previous_stage_wants_a_passed_analysis_when_the_environment_before_has_one(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    # dev's VSA was signed when dev had no analysis; once dev has one, staging wants a VSA that
    # records it passed: a promotion that skipped the analysis does not carry the release on
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"prometheus": {"type": "prometheus", "url": "http://127.0.0.1:9"}}
    config["environments"]["dev"]["analysis"] = {
        "provider": "prometheus",
        "checks": [{"name": "error-ratio", "query": ERROR_RATIO, "max": 0.01}],
    }
    config["environments"]["staging"].pop("soak", None)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli(["plan", "--to", "staging", *policy], cwd=signed)
    assert result.code == 1
    assert "dev's signed VSA for this release records no passed analysis" in result.out


def good_then_bad(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
    live: tuple[Exporter, LocalPrometheus],
) -> tuple[str, str]:
    """A healthy release promoted to dev (its analysis passed), then a bad one built and signed
    (20% errors once deployed): their ids."""
    exporter, prometheus = live
    with_analysis(signed, prometheus.url, exporter.deployed)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    good = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    bad = another_release(cli, signed, sigstore, monkeypatch)
    exporter.ratios[bad] = 0.2
    return str(good), bad


def test_a_failed_analysis_in_arrive_signs_the_hold_and_leaves_only_the_deploy_to_the_workflow(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    live: tuple[Exporter, LocalPrometheus],
) -> None:
    # The isolated layout (docs/signing-layouts.md): arrive runs no deploy command, yet a failed
    # analysis must hold the release out as surely as in one job: else deciding and arriving again
    # (a re-run) would measure it anew and could sign it PASSED (found in review).
    exporter = live[0]
    good, bad = good_then_bad(cli, signed, sigstore, policy, monkeypatch, live)
    assert cli(["promote", "--to", "dev", "--deploy-elsewhere", *policy], cwd=signed).code == 0
    exporter.deployed.write_text(bad)  # the deploy job of the workflow
    arrived = cli(["arrive", "--to", "dev", "--deploy-result", "success", "--release", bad, *policy], cwd=signed)
    assert arrived.code == 1, arrived.out + arrived.err
    assert f"rolled dev back from {bad} to {good} (signed; deploy {good} from a job of yours)" in arrived.out
    assert exporter.deployed.read_text().strip() == bad  # nothing deployed from the signing job
    assert (signed / ".pipeline-kit" / "releases" / bad / "promotions" / "dev.rollback.sigstore.json").is_file()
    last = ledger(signed)[-1]
    assert last["kind"] == "rolled-back" and last["details"]["deploy"] == "elsewhere"  # type: ignore[index]
    assert evaluate_flag(signed / "deploy" / "flags.json", tier="beta") is False
    # deciding it again is refused by the signed hold, whatever the metrics say now
    exporter.ratios[bad] = 0.0
    again = cli(["promote", "--to", "dev", "--deploy-elsewhere", *policy], cwd=signed)
    assert again.code == 1 and "rolled back from dev" in again.out, again.out


def test_what_a_metrics_server_says_is_shown_in_the_job_summary_as_text(
    cli: Cli, signed: Path, policy: list[str], token: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each measurement quotes the server's error in the summary's table: a link, an image or HTML
    # in it must not draw there
    from markdown_it import MarkdownIt

    said = "[login](https://evil.example) ![x](https://evil.example/t.png) <img src=x> `code`"
    error = json.dumps({"status": "error", "errorType": "bad_data", "error": said}).encode()
    config_path = signed / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    summary = github_summary(monkeypatch, tmp_path / "summary.md")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    with answering(200, error) as url:  # 200: as a proxy in front of Prometheus may answer
        config["metrics"] = {"prometheus": {"type": "prometheus", "url": url, "timeout": 2.0}}
        config["environments"]["dev"].update(
            deploy="true",
            analysis={
                "provider": "prometheus",
                "interval": "1s",
                "count": 1,
                "checks": [{"name": "errors", "query": "up", "max": 1}],
            },
            **{"on-failure": {"rollback": False}},
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 1 and "login" in summary.read_text(), result.out + result.err
    tokens = MarkdownIt("commonmark").enable("table").parse(summary.read_text())
    inline = [c for t in tokens for c in t.children or []]
    kinds = {t.type for t in tokens} | {c.type for c in inline}
    assert not kinds & {"link_open", "image", "html_inline", "html_block"}, summary.read_text()
    # the only code spans are the kit's own (the release id)
    assert all(re.fullmatch(r"[0-9a-f]{32}", c.content) for c in inline if c.type == "code_inline"), inline


def test_a_kill_switch_that_crashes_never_keeps_a_bad_release_from_its_rollback(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    live: tuple[Exporter, LocalPrometheus],
) -> None:
    # the kill switches go first; one failing in a way nobody foresaw (here a flag file nested
    # past the JSON parser's depth) must leave the signed rollback to run after it
    exporter = live[0]
    good, _ = good_then_bad(cli, signed, sigstore, policy, monkeypatch, live)
    (signed / "deploy" / "flags.json").write_text('{"flags": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 3, result.out + result.err
    assert "internal error" not in result.err and "kill switch new-checkout: " in result.err, result.err
    assert exporter.deployed.read_text().strip() == good  # rolled back all the same
    assert [(e["kind"], e["release"]) for e in ledger(signed)[-2:]] == [("deployed", good), ("rolled-back", good)]
