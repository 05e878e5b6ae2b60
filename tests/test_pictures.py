"""The job summaries' pictures, checked by Mermaid's own parser: labels made of hostile text stay
labels, the promote and rollout summaries draw what happened, and `plan` and a dry run say what
follows the gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_kit.report.mermaid import MAX_NODES, Flowchart, Node, graph
from tests.conftest import Cli
from tests.mermaid_parser import charts, github_summary, parse, shown
from tests.sigstore_instance import LocalSigstore
from tests.test_rollout import with_rollout

HOSTILE = [
    'prod"] --> evil["x',
    "a\nclick n0 call alert(1)\n%%{init: {'securityLevel': 'loose'}}%%",
    "```\n# heading <img src=x onerror=alert(1)> [link](http://e)",
    "#quot; #35; ;;; ]]] }}} ))) |pipe| ::: classDef",
    "ünïcødé 🚀 \t tab \x1b[31m",
    "",
]


def test_hostile_labels_stay_one_label_each_and_show_their_text() -> None:
    nodes = [Node((text, "second line"), "failed") for text in HOSTILE]
    chart = graph([(str(i), node, [str(i - 1)] if i else []) for i, node in enumerate(nodes)])
    [answer] = parse([chart.text()])
    assert answer["ok"], answer["error"]
    assert [v["id"] for v in answer["vertices"]] == [f"n{i}" for i in range(len(HOSTILE))]
    assert [shown(v["text"]) for v in answer["vertices"]] == [f"{text}\nsecond line" for text in HOSTILE]
    assert answer["edges"] == [[f"n{i}", f"n{i + 1}"] for i in range(len(HOSTILE) - 1)]
    assert all(v["classes"] == ["failed"] for v in answer["vertices"])
    # and in Markdown the fence holds: one diagram, ending where it was closed
    markdown = chart.markdown() + "after\n"
    assert markdown.count("```") == 2 and markdown.endswith("```\nafter\n")


def test_a_long_label_and_a_large_diagram_are_cut() -> None:
    chart = Flowchart([Node(("x" * 1000,), "passed")] * (MAX_NODES + 5), [])
    [answer] = parse([chart.text()])
    assert answer["ok"], answer["error"]
    assert len(answer["vertices"]) == MAX_NODES + 1
    assert shown(answer["vertices"][-1]["text"]) == "5 more not shown"
    assert len(shown(answer["vertices"][0]["text"])) == 160


def test_the_promote_summary_draws_the_environments_with_their_verdicts(
    cli: Cli, signed: Path, policy: list[str], token: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = github_summary(monkeypatch, tmp_path / "summary.md")
    result = cli(["promote", "--to", "dev", "--reason", 'a "quoted"] reason', *policy], cwd=signed)
    assert result.code == 0, result.err
    release = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    [chart] = charts(summary.read_text())
    assert chart["shown"] == [
        (f"dev\nrelease {release[:12]}\ngates passed\narrived", ["passed"]),
        ("staging\nnot judged by this job", ["waiting"]),
        ("prod\nnot judged by this job", ["waiting"]),
    ]
    assert chart["edges"] == [["n0", "n1"], ["n1", "n2"]]
    # staging comes after dev: its plan draws dev with what its previous-stage gate found (the
    # release there, not soaked yet), itself denied
    summary.write_text("")
    planned = cli(["plan", "--to", "staging", *policy], cwd=signed)
    assert planned.code == 1
    [chart] = charts(summary.read_text())
    assert chart["shown"][0][0].startswith("dev\nsoak 0m of 30m in dev, ready at ")
    assert chart["shown"][0][1] == ["waiting"]
    label, classes = chart["shown"][1]
    assert label.startswith(f"staging\nrelease {release[:12]}\nwould be DENIED: ") and classes == ["failed"]


def test_the_rollout_summary_draws_its_steps(
    cli: Cli,
    signed: Path,
    policy: list[str],
    token: None,
    sigstore: LocalSigstore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import another_release

    with_rollout(signed, [{"weight": 100}])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    another_release(cli, signed, sigstore, monkeypatch)
    with_rollout(signed, [{"weight": 10}, {"weight": 50, "pause": "manual"}, {"weight": 100}])
    summary = github_summary(monkeypatch, tmp_path / "summary.md")
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 0 and "rollout: paused" in result.out, result.out + result.err
    environments, steps = charts(summary.read_text())
    assert environments["shown"][0][0].endswith("rollout paused at step 2 (50%)")
    assert environments["shown"][0][1] == ["running"]
    assert steps["shown"] == [
        ("step 1: 10%", ["passed"]),
        ("step 2: 50%\npause manual", ["running"]),
        ("step 3: 100%", ["waiting"]),
    ]
    assert steps["edges"] == [["n0", "n1"], ["n1", "n2"]]


def test_plan_and_a_dry_run_say_what_follows_the_gates(cli: Cli, signed: Path, policy: list[str]) -> None:
    with_rollout(signed, [{"weight": 25}, {"weight": 100}])
    result = cli(["plan", "--to", "dev", *policy], cwd=signed)
    assert result.code == 0, result.err
    after = result.out.split("after the gates:\n", 1)[1].splitlines()
    assert after == [
        '  deploy: echo "$PIPELINE_KIT_SLOT $PIPELINE_KIT_SLOT_ADDRESS $PIPELINE_KIT_RELEASE_ID" >> deploys.txt',
        "  rollout: canary, 25% -> 100%, traffic set by command (a first rollout: all at once)",
        "  on failure: traffic back to the stable slot, a signed rollback holds the release out",
    ]
    data = json.loads(cli(["plan", "--to", "dev", "--json", *policy], cwd=signed).out)
    assert data["after_gates"] == [line.strip() for line in after]
    dry = cli(["run", "--dry-run"], cwd=signed)
    assert dry.code in (0, 1), dry.err
    assert dry.out.count("after the gates:") == 3
    assert "  on failure: a failed deploy fails the promotion (exit 1); `pipeline-kit rollback` goes back" in dry.out
