"""The release report and the numbers of delivery, from a scripted history signed at scripted
times (tests/scripted_history.py, built once per session): the figures are computed by hand from
the script's minutes."""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tests.chromium import Chromium
from tests.conftest import LEDGER, Cli
from tests.scripted_history import COMMITTED, XSS, Scripted, build_history
from tests.sigstore_instance import LocalSigstore


@pytest.fixture(scope="session")
def scripted(tmp_path_factory: pytest.TempPathFactory, sigstore: LocalSigstore) -> Scripted:
    return build_history(tmp_path_factory.mktemp("history"), sigstore)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    browser = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()


def minutes(*values: float) -> list[float]:
    return [v * 60.0 for v in values]


def test_dora_figures_are_the_hand_computed_ones(cli: Cli, scripted: Scripted, sigstore: LocalSigstore) -> None:
    since, until = scripted.at(0), scripted.at(0) + timedelta(days=2)
    result = cli(
        [
            "report",
            *scripted.policy(sigstore),
            "dora",
            "--json",
            "--since",
            since.isoformat(),
            "--until",
            until.isoformat(),
        ],
        cwd=scripted.project,
    )
    assert result.code == 0, result.err
    figures = json.loads(result.out)
    prod, dev, staging = (figures["environments"][env] for env in ("prod", "dev", "staging"))
    # prod: R1 arrives at 80 (its analysis' VSA), R2 at its deploy (155: its analysis failed, no
    # VSA; the signed rollback at 175 seals that deploy line), R3 at 260 (the rollout's VSA)
    assert prod["deployments"] == 3 and prod["deployments_per_day"] == 1.5
    # commits at -120, 60 and 180
    assert sorted(prod["lead_time"]["seconds"]) == sorted(minutes(80 + 120, 155 - 60, 260 - 180))
    assert prod["lead_time"]["median_seconds"] == 95 * 60
    assert (prod["failures"], prod["change_failure_rate"]) == (1, 1 / 3)
    assert prod["time_to_restore"]["seconds"] == minutes(175 - 155)
    # decisions at 60, 150 and 225 to arrivals at 80, 155 and 260
    assert sorted(prod["time_to_deploy"]["seconds"]) == sorted(minutes(20, 5, 35))
    assert prod["time_to_deploy"]["median_seconds"] == 20 * 60
    # the failed analysis recorded at 170, the signed rollback (traffic on stable) at 175
    assert prod["failure_to_stable"]["seconds"] == minutes(5)
    # dev: R1 at 10, R2 at 120, R3 at 210; the forged line at 280 does not count
    assert dev["deployments"] == 3 and dev["failures"] == 0 and dev["change_failure_rate"] == 0
    assert sorted(dev["lead_time"]["seconds"]) == sorted(minutes(10 + 120, 120 - 60, 210 - 180))
    assert dev["time_to_deploy"]["count"] == 0  # nothing deployed there: no deploy time made up
    assert staging["lead_time"]["median_seconds"] == (130 - 60) * 60
    assert COMMITTED == {"R1": -120, "R2": 60, "R3": 180}
    counted_out = figures["counted_out"]
    assert len(counted_out) == 1 and counted_out[0].startswith("dev: ledger seq 28 (promoted): vsa ")
    assert "not urn:pipeline-kit:environment:dev" in counted_out[0]


def test_dora_window_and_table(cli: Cli, scripted: Scripted, sigstore: LocalSigstore) -> None:
    # a window holding only R3's prod arrival (260) and nothing of dev
    since, until = scripted.at(250), scripted.at(250) + timedelta(days=1)
    args = ["report", "dora", *scripted.policy(sigstore), "--env", "prod"]  # the options after dora too
    result = cli([*args, "--since", since.isoformat(), "--until", until.isoformat()], cwd=scripted.project)
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()]
    assert rows[1][:2] == ["env", "deploys"]
    # R3: 1 deploy, lead 80m, no failure, deploy time 35m
    assert rows[3] == ["prod", "1", "1.00/day", "1h20m", "0%", "(0/1)", "-", "35m", "-"]
    assert len(rows) == 4  # nothing counted out in this window
    unknown = cli([*args[:-2], "--env", "qa"], cwd=scripted.project)
    assert unknown.code == 2 and "qa" in unknown.err
    bad_time = cli([*args, "--since", "yesterday"], cwd=scripted.project)
    assert bad_time.code == 2 and bad_time.err.startswith("error: --since: not an ISO 8601 time: 'yesterday'")


def test_a_ledger_edited_after_the_fact_stops_the_report_and_writes_nothing(
    cli: Cli, scripted: Scripted, sigstore: LocalSigstore, tmp_path: Path
) -> None:
    import shutil

    project = tmp_path / "project"
    shutil.copytree(scripted.project, project)
    ledger = project / LEDGER
    # the failed analysis of R2 made to look passed: the line's hash no longer matches
    ledger.write_bytes(ledger.read_bytes().replace(b'"verdict":"failed"', b'"verdict":"passed"', 1))
    out = tmp_path / "edited.html"
    result = cli(["report", *scripted.policy(sigstore), "-o", str(out)], cwd=project)
    assert result.code == 1 and "line 10 (seq 10) was edited" in result.err and not out.exists()
    unknown = cli(["report", *scripted.policy(sigstore), "--env", "qa", "-o", str(out)], cwd=scripted.project)
    assert unknown.code == 2 and not out.exists()


ROWS = (
    "[...document.querySelectorAll('table.timeline tr')].slice(1).map(r => [...r.cells].map(c => c.innerText.trim()))"
)
CHARTS = "[...document.querySelectorAll('svg')].map(s => [s.querySelector('title').textContent, [...s.querySelectorAll('circle,rect')].map(c => c.getAttribute('class')), [...s.querySelectorAll('text')].map(t => t.textContent)])"
STYLED = "getComputedStyle(document.querySelector('.badge.verified')).backgroundColor"
ELEMENTS = "document.querySelectorAll('script,img,iframe,object,embed,link').length"
# by seq: what the script signed (and so verified), what a signed record's ledger head seals,
# and the forged line; the rest (the release plan) is the ledger's word only
VERIFIED = {1, 2, 5, 6, 7, 12, 13, 14, 15, 18, 20, 22}
SEALED = {3, 4, 8, 9, 10, 11, 16, 17, 19, 21}
REFUSED = {28}


def report(cli: Cli, scripted: Scripted, sigstore: LocalSigstore, out: Path, *args: str) -> str:
    result = cli(["report", *scripted.policy(sigstore), "-o", str(out), *args], cwd=scripted.project)
    assert result.code == 0, result.err
    return out.read_text()


def test_the_report_shows_the_scripted_history_in_a_real_browser(
    cli: Cli, scripted: Scripted, sigstore: LocalSigstore, chromium: Chromium, tmp_path: Path
) -> None:
    page = report(cli, scripted, sigstore, tmp_path / "report.html")
    # the attacker's reason and approver name are text, never markup
    assert "<script" not in page and "<img" not in page and 'onerror="' not in page
    loaded = chromium.load(
        (tmp_path / "report.html").as_uri(), "document.title", ROWS, CHARTS, STYLED, ELEMENTS, "document.body.innerText"
    )
    assert loaded.requests == [(tmp_path / "report.html").as_uri()]  # nothing else, of any kind
    assert loaded.console == []  # no error, no CSP refusal (the style block's hash is right)
    values = loaded.values
    assert values["document.title"] == "pipeline-kit release report"  # the injected script never ran
    assert values[ELEMENTS] == 0
    assert values[STYLED] == "rgb(218, 251, 225)"  # the style applies under the CSP
    text = values["document.body.innerText"]
    # as text: the ledger reasons of seq 10 and 12, the failed analysis, the signed hold in custody and
    # in rollbacks, the approver in the approvals reason and in "approved by"
    assert text.count(XSS) == 7
    rows = values[ROWS]
    assert [int(row[0]) for row in rows] == list(range(28, 0, -1))
    ids = scripted.releases
    for row, entry in zip(rows, reversed(scripted.entries), strict=True):
        seq = entry.seq
        assert row[1] == f"{entry.time:%Y-%m-%d %H:%M:%S}Z"
        assert row[3:7] == [entry.kind, entry.environment, entry.release or "", entry.actor]
        expected = (
            "signed, verified"
            if seq in VERIFIED
            else "ledger, sealed"
            if seq in SEALED
            else "REFUSED"
            if seq in REFUSED
            else "ledger only"
        )
        assert row[8].startswith(expected), (seq, row)
        # the signed time of a verified entry is the one the script signed it at
        assert (row[2] != "-") == (seq in VERIFIED)
        if seq in VERIFIED:
            assert row[2] == row[1]
    assert "is for https://hello.example.com, not urn:pipeline-kit:environment:dev" in rows[0][8]
    charts = {title: (marks, texts) for title, marks, texts in values[CHARTS]}
    r1, r2 = (f"prod {ids[n]}" for n in ("R1", "R2"))
    assert charts[f"{r1}: analysis passed: errors"][0] == ["passed"] * 3
    marks, texts = charts[f"{r2}: analysis failed: errors"]
    assert marks == ["passed", "failed"] and "max 0.01" in texts
    assert charts[f"rollout of {ids['R3']} in prod"][0] == ["ledger", "signed", "ledger", "signed", "ledger", "signed"]
    plan = charts[f"release plan {'p' * 12} to prod: failed"]
    assert plan == (["error", "failed"], ["api", "compensated", "web", "step-failed"])
    for name in ("R1", "R2", "R3"):
        assert scripted.commits[name] in text and ids[name] in text
    assert f"approved by: dave, eve{XSS}" in text
    assert f"{ids['R2']} → {ids['R1']}" in text  # the rollback, from -> to
    assert "bad cache key (signed)" in text


def test_a_report_of_one_release_shows_only_it(
    cli: Cli, scripted: Scripted, sigstore: LocalSigstore, tmp_path: Path
) -> None:
    ids = scripted.releases
    page = report(cli, scripted, sigstore, tmp_path / "r2.html", "--release", ids["R2"], "--env", "prod")
    assert ids["R2"] in page and f"release-{ids['R1']}" not in page and f"release-{ids['R3']}" not in page
    # prod's entries about R2: its promotion, deploy, analysis, kill switch, rollback and root cause
    assert page.count("</td></tr>") > 0


def test_records_signed_by_another_identity_are_refused_never_passed(
    cli: Cli, scripted: Scripted, sigstore: LocalSigstore, tmp_path: Path
) -> None:
    out = tmp_path / "other.html"
    args = ["report", "--trust-config", str(sigstore.trust_config_path), "--cert-identity", "mallory@example.com"]
    result = cli([*args, "-o", str(out)], cwd=scripted.project)
    assert result.code == 0, result.err
    page = out.read_text()
    assert "28 shown: 0 <span" in page  # not one verified
    assert "arrived, PASSED" not in page and "No release is shown by a verified record." in page
    timeline = page[page.index("Ledger, newest first") :]
    assert timeline.count('<span class="badge refused"') == len(VERIFIED | REFUSED)  # every signed line
    assert page.count('<span class="badge verified"') == 1  # the legend's
    assert 'class="badge sealed"' not in page  # nothing verified seals a ledger line


def test_the_report_of_a_thousand_entries_renders_bounded(
    cli: Cli, scripted: Scripted, sigstore: LocalSigstore, chromium: Chromium, tmp_path: Path
) -> None:
    import shutil

    from pipeline_kit.ledger import Draft, FileLedger

    project = tmp_path / "project"
    shutil.copytree(scripted.project, project)
    ledger = FileLedger(project / LEDGER)
    first = scripted.entries[0]  # R1's dev promotion: its VSA attachment, named again and again
    for n in range(1000 - len(scripted.entries)):
        kind = ("promoted", "flag-killed", "rollout")[n % 3]
        details = {"vsa": first.details["vsa"], "deploy": "none"} if kind == "promoted" else {"flag": f"f{n}"}
        ledger.append(
            Draft(
                kind=kind,
                environment="dev",
                release=first.release,
                subjects=first.subjects,
                actor=f"a{n}",
                time=first.time,
                reason=f"line {n} {XSS}",
                details=details,
            )
        )
    moved = Scripted(project, scripted.base, scripted.releases, scripted.commits, scripted.subjects)
    out = tmp_path / "big.html"
    page = report(cli, moved, sigstore, out)
    assert len(page.encode()) < 1_500_000  # about 1 KiB an entry, whatever the history holds
    loaded = chromium.load(out.as_uri(), ROWS, ELEMENTS)
    assert loaded.requests == [out.as_uri()] and loaded.console == []
    rows = loaded.values[ROWS]
    assert len(rows) == 1000 and rows[0][0] == "1000" and rows[-1][0] == "1"
    assert loaded.values[ELEMENTS] == 0


def test_what_the_kit_itself_signs_verifies_in_the_report(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Real promotions, a real rollback and a real root cause (not the script's records): each one's
    signed record verifies, and the numbers count them."""
    from tests.conftest import another_release

    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token("dev@example.com"))
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    good = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    bad = another_release(cli, signed, sigstore, monkeypatch)
    assert cli(["promote", "--to", "dev", *policy, "--", "true"], cwd=signed).code == 0
    rolled = cli(["rollback", "--env", "dev", "--reason", "too slow", *policy, "--", "true"], cwd=signed)
    assert rolled.code == 0, rolled.err
    assert cli(["ledger", "annotate", "--env", "dev", "--root-cause", "N+1 query", *policy], cwd=signed).code == 0
    out = tmp_path / "real.html"
    result = cli(["report", *policy, "-o", str(out)], cwd=signed)
    assert result.code == 0, result.err
    page = out.read_text()
    timeline = page[page.index("Ledger, newest first") :]
    assert timeline.count('class="badge refused"') == 0
    # two promotions, the rollback and the root cause, each with its own signed record
    assert timeline.count('<span class="badge verified"') == 4
    assert (
        "too slow <span class='note'>(signed)</span>" in page and "N+1 query <span class='note'>(signed)</span>" in page
    )
    assert f"{bad} &rarr; {good}" in page
    # each promotion's VSA names its decision record: the gates' reasons are shown as signed
    assert page.count("(a signed record commits to it)") == 2 and "rollback-hold: <b>passed</b>" in page
    dora = cli(["report", *policy, "dora", "--json", "--env", "dev"], cwd=signed)
    figures = json.loads(dora.out)["environments"]["dev"]
    assert (figures["deployments"], figures["failures"]) == (2, 1)
    assert len(figures["lead_time"]["seconds"]) == 2  # both provenances sign their commit's time
    assert len(figures["time_to_restore"]["seconds"]) == 1 and figures["time_to_restore"]["seconds"][0] >= 0


def test_the_report_template_exposes_the_report_under_gitlab_ci_local(tmp_path: Path, sigstore: LocalSigstore) -> None:
    """The full pipeline, then report.yml after its dev promotion, run by gitlab-ci-local: the job
    writes the page from the promotion's ledger and evidence and exposes it as an artifact."""
    from tests.conftest import SIGNER, git
    from tests.test_gitlab_templates import project, run, run_offline

    repo = project(tmp_path, sigstore)
    (repo / ".gitlab-ci.yml").write_text(
        (repo / ".gitlab-ci.yml").read_text() + "  - local: gitlab-templates/report.yml\n"
        "    inputs:\n"
        f"      python: {sys.executable}\n"
        "      needs: pipeline-kit-promote-dev\n"
        f"      trust-config: {sigstore.trust_config_path}\n"
        f"      cert-identity: {SIGNER}\n"
        f"      cert-oidc-issuer: {sigstore.issuer}\n"
    )
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "report")
    preview = yaml.safe_load(run(repo, "--preview").stdout)
    assert preview["pipeline-kit-report"]["artifacts"]["expose_as"] == "release report"
    assert preview["pipeline-kit-report"]["artifacts"]["paths"] == ["pipeline-kit-report.html"]
    result = run_offline(repo, SIGSTORE_IDENTITY_TOKEN=sigstore.mint_token(SIGNER))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "PASS  pipeline-kit-report" in result.stdout
    page = (repo / "pipeline-kit-report.html").read_text()
    timeline = page[page.index("Ledger, newest first") :]
    # the VSA signed once the deploy succeeded (on the `deployed` line) verifies, and seals the
    # decision's line before it; it names the decision record, whose gates are shown
    assert timeline.count('<span class="badge verified"') == 1 and timeline.count('class="badge sealed"') == 1
    assert "(a signed record commits to it)" in page and "refused" not in timeline


def test_planted_records_are_refused_or_left_out(
    cli: Cli, scripted: Scripted, sigstore: LocalSigstore, tmp_path: Path
) -> None:
    """What a job that can write the ledger and the evidence dir could try: a line naming a genuine
    VSA of another release, a line claiming a rollback with a promotion's VSA, and the failed
    analysis's measurements edited to look passed. None of it is drawn as signed."""
    import shutil

    from pipeline_kit.ledger import Draft, FileLedger

    project = tmp_path / "project"
    shutil.copytree(scripted.project, project)
    ids = scripted.releases
    first = scripted.entries[0]  # R1's dev promotion
    ledger = FileLedger(project / LEDGER)
    common = {"environment": "dev", "actor": "mallory", "time": first.time}
    ledger.append(Draft(kind="promoted", release=ids["R3"], details={"vsa": first.details["vsa"]}, **common))
    hold = {"from": ids["R1"], "to": ids["R2"], "hold": first.details["vsa"]}
    ledger.append(Draft(kind="rolled-back", release=ids["R2"], details=hold, **common))
    analysis = project / ".pipeline-kit" / "releases" / ids["R2"] / "promotions" / "prod.analysis.json"
    analysis.write_text(analysis.read_text().replace('"failed"', '"passed"'))
    out = tmp_path / "planted.html"
    page = report(cli, Scripted(project, scripted.base), sigstore, out)
    timeline = page[page.index("Ledger, newest first") :]
    newest, second = timeline.split("<tr><td>")[1:3]
    assert newest.startswith("30<") and "REFUSED" in newest and "is not a signed hold" in newest
    assert second.startswith("29<") and "REFUSED" in second and f"other subjects than release {ids['R3']}" in second
    # the edited measurements no longer have the digest the sealed line names: not drawn at all
    assert f"prod {ids['R2']}: analysis failed: errors" not in page
    assert "its measurements are not shown: no record a signature commits to" in page
    dora = cli(
        [
            "report",
            *scripted.policy(sigstore),
            "dora",
            "--json",
            "--env",
            "dev",
            "--until",
            scripted.at(300).isoformat(),
        ],
        cwd=project,
    )
    assert json.loads(dora.out)["environments"]["dev"]["deployments"] == 3  # R1, R2, R3 as before


def test_a_release_plan_is_drawn_as_its_graph_with_each_step_verified_in_its_service(
    cli: Cli, scripted: Scripted, sigstore: LocalSigstore, chromium: Chromium, tmp_path: Path
) -> None:
    import hashlib
    import shutil

    from pipeline_kit.ledger import Draft, FileLedger

    root = tmp_path / "plan"
    for name in ("api", "web", "worker"):  # each a project with the scripted history
        shutil.copytree(scripted.project, root / name)
    text = (
        "version: 1\nsteps:\n  - {service: api, path: api}\n  - {service: web, path: web, needs: [api]}\n"
        "  - {service: worker, path: worker, needs: [api]}\n"
    )
    (root / "release-plan.yml").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    ids = scripted.releases
    saga = FileLedger(root / LEDGER)
    lines: list[tuple[str, str | None, str | None]] = [
        ("started", None, None),
        ("step-done", "api", ids["R3"]),  # R3's prod VSA is in api's ledger: verified
        ("step-done", "web", ids["R2"]),  # R2 never arrived in prod by a VSA (its analysis failed)
        ("step-failed", "worker", None),
        ("compensated", "web", ids["R2"]),
        ("failed", None, None),
    ]
    for state, service, release in lines:
        details = {"state": state, "plan": digest, "service": service}
        saga.append(
            Draft(kind="saga", environment="prod", release=release, actor="ci", time=scripted.at(300), details=details)
        )
    out = tmp_path / "plan.html"
    page = report(cli, scripted, sigstore, out, "--plan", str(root / "release-plan.yml"))
    loaded = chromium.load(out.as_uri(), CHARTS)
    assert loaded.requests == [out.as_uri()]
    graphs = {title: (marks, texts) for title, marks, texts in loaded.values[CHARTS]}
    marks, texts = graphs[f"release plan {digest[:12]} to prod: failed"]
    # api: its step's release verified in api's own ledger; web: compensated, never arrived by a
    # signed VSA; worker: failed
    assert marks == ["passed", "ledger", "failed"]
    assert texts == ["api", "step-done", "web", "compensated", "worker", "step-failed"]
    assert page.count('<line class="edge"') >= 2  # api -> web, api -> worker
    assert html.escape(f"no signed arrival of {ids['R2']} in prod in web's ledger") in page


def test_an_empty_ledger_is_refused_not_reported_as_nothing_deployed(cli: Cli, hello: Path, policy: list[str]) -> None:
    for args in (["report", *policy], ["report", "dora", *policy]):
        result = cli(args, cwd=hello)
        # no ledger file at all: said so, not "has no entries"
        assert result.code == 2 and "does not exist: nothing to report" in result.err, result.err
        assert not (hello / "pipeline-kit-report.html").exists()
