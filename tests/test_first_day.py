"""The small things of the first day (issue 23): what the kit prints says what it means (counts in
the right number, every option explained, rollout and rollback rows complete, a release plan's
summary and each service's release), what `init` ignores, and output that reaches a CI log in the
order it was written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from pipeline_kit._internal.text import counted
from pipeline_kit.cli import COMMANDS, load
from pipeline_kit.cli import cli as root_command
from pipeline_kit.ledger import Draft, FileLedger
from pipeline_kit.models import RELEASE_ID, release_id
from pipeline_kit.release_plan import load_plan
from tests.conftest import EXAMPLE, LEDGER, ROOT, Cli, describe, init_repo, local_release

TIME = datetime(2026, 11, 18, 12, 0, tzinfo=timezone.utc)


def test_the_readme_gives_the_release_id_length_the_kit_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    stated = re.findall(r"\*\*Release id\*\*: the first (\d+) hex digits \((\d+) bits\)", readme)
    length = len(release_id(local_release(1).subjects))
    assert stated == [(str(length), str(length * 4))] and RELEASE_ID.pattern == f"[0-9a-f]{{{length}}}"
    assert not re.search(r"\b16 hex digits\b", readme)


def test_counts_take_the_noun_in_the_right_number() -> None:
    assert [counted(n, "component") for n in (0, 1, 2)] == ["0 components", "1 component", "2 components"]
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"


def commands(command: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    if isinstance(command, click.Group):
        return [found for name, sub in command.commands.items() for found in commands(sub, (*path, name))]
    return [(path, command)]


def test_every_option_of_every_command_says_what_it_does() -> None:
    # `migrations check --dialect` was listed in --help with nothing but its choices
    unexplained = [
        (" ".join(path), option.opts[0])
        for name in COMMANDS
        for path, command in commands(load(name), (name,))
        for option in command.params
        if isinstance(option, click.Option) and not option.hidden and not option.help
    ]
    unexplained += [("", o.opts[0]) for o in root_command.params if isinstance(o, click.Option) and not o.help]
    assert unexplained == []


def fresh_project(path: Path, kind: str) -> None:
    path.mkdir()
    if kind == "python":
        (path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "1.0.0"\n')
    else:
        (path / "package.json").write_text(json.dumps({"name": "demo", "version": "1.0.0"}))


def test_init_ignores_what_a_python_build_leaves_in_the_tree(cli: Cli, tmp_path: Path) -> None:
    python, node = tmp_path / "python", tmp_path / "node"
    fresh_project(python, "python")
    fresh_project(node, "node")
    (node / ".npmignore").write_text("test/\n")
    for project in (python, node):
        assert cli(["init"], cwd=project).code == 0
    ignored = (python / ".gitignore").read_text().splitlines()
    assert {".pipeline-kit/", ".pipeline-kit-ledger/", "dist/", "build/", "*.egg-info/"} <= set(ignored)
    # setuptools' leftovers are a Python build's: a Node project may ship or commit a build/ of its own
    assert "build/" not in (node / ".gitignore").read_text().splitlines()
    assert "build/" not in (node / ".npmignore").read_text().splitlines()


def test_ledger_show_gives_a_rollouts_step_and_weight_and_a_rollbacks_from_and_to(cli: Cli, tmp_path: Path) -> None:
    canary, stable = local_release(1).id, local_release(2).id
    ledger = FileLedger(tmp_path / LEDGER)

    def note(kind: Any, release: str, details: dict[str, Any]) -> None:
        ledger.append(Draft(kind=kind, environment="prod", release=release, actor="ci", time=TIME, details=details))

    note("rollout", canary, {"state": "started", "step": -1, "weight": 0})
    note("rollout", canary, {"state": "step", "step": 1, "weight": 25})
    note("rollout", canary, {"state": "failed", "step": 1, "weight": 0, "reason": "error-ratio"})
    note("rolled-back", stable, {"from": canary, "to": stable, "hold": "0" * 64})
    shown = cli(["ledger", "show"], cwd=tmp_path)
    assert shown.code == 0, shown.err
    rows = shown.out.splitlines()
    assert rows[0].split() == ["seq", "time", "kind", "env", "release", "details", "actor", "reason"]
    assert "started: weight 0%" in rows[2]
    assert "step: step 2, weight 25%" in rows[3]  # counted from 1, as `rollout status` shows steps
    assert "failed: step 2, weight 0%" in rows[4]
    assert f"{canary} -> {stable}" in rows[5]
    # --json is the entries as recorded, unchanged
    as_json = json.loads(cli(["ledger", "show", "--json"], cwd=tmp_path).out)
    assert as_json == [json.loads(e.model_dump_json()) for e in ledger.entries()]
    assert set(as_json[0]) == {"seq", "prev", "hash", "kind", "environment", "release", "subjects", "actor"} | {
        "time",
        "reason",
        "details",
    }


PLAN = """\
version: 1
steps:
  - {service: accounts, path: services/accounts}
  - {service: orders, path: services/orders, needs: [accounts]}
"""


def plan_root(tmp_path: Path, described: bool = False, cli: Cli | None = None) -> Path:
    root = tmp_path / "release"
    for service in ("accounts", "orders"):
        project = root / "services" / service
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
        if described:
            assert cli is not None
            init_repo(project)
            describe(cli, project)
    (root / "release-plan.yml").write_text(PLAN)
    return root


def test_release_status_shows_each_services_release(cli: Cli, tmp_path: Path) -> None:
    root = plan_root(tmp_path)
    loaded = load_plan(root / "release-plan.yml")
    accounts, orders = local_release(1).id, local_release(2).id
    for state, service, release in [
        ("started", None, None),
        ("step-done", "accounts", accounts),
        ("step-done", "orders", orders),
        ("finished", None, None),
    ]:
        details = {"plan": loaded.digest, "state": state, "service": service}
        loaded.ledger().append(
            Draft(kind="saga", environment="dev", release=release, actor="ci", time=TIME, details=details)
        )
    shown = cli(["release", "status", "--to", "dev"], cwd=root)
    assert shown.code == 0, shown.err
    assert "dev: finished; done: accounts, orders" in shown.out
    rows = [line.split() for line in shown.out.splitlines()]
    assert ["accounts", accounts, "promoted"] in rows and ["orders", orders, "promoted"] in rows
    status = json.loads(cli(["release", "status", "--to", "dev", "--json"], cwd=root).out)
    assert status["releases"] == {"accounts": accounts, "orders": orders}  # the text says what --json does


def test_release_plan_ends_with_a_summary(cli: Cli, tmp_path: Path, policy: list[str]) -> None:
    root = plan_root(tmp_path, described=True, cli=cli)
    shown = cli(["release", "plan", "--to", "dev", *policy], cwd=root)
    assert shown.code == 1, shown.out + shown.err  # nothing signed: every step would be denied
    assert (
        shown.out.splitlines()[-1] == "release plan to dev: 0 of 2 steps would pass; would be DENIED: accounts, orders"
    )


def test_results_and_progress_reach_one_log_in_the_order_they_were_written(hello: Path) -> None:
    # A CI log reads stdout and stderr together: the build's progress (stderr) comes before the
    # release it built (stdout), and a problem (stderr) after the summary it concerns (stdout).
    init_repo(hello)
    merged = subprocess.run(
        [sys.executable, "-m", "pipeline_kit", "build"],
        cwd=hello,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert merged.startswith("built dist/") and merged.index("built dist/") < merged.index("release ")
    with (hello / ".pipeline-kit" / "SHA256SUMS").open("a") as sums:
        sums.write("edited\n")
    merged = subprocess.run(
        [sys.executable, "-m", "pipeline_kit", "show"],
        cwd=hello,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert merged.index("evidence file") < merged.index("problem: ") and merged.rstrip().splitlines()[-1].startswith(
        "problem: "
    )


AS_THE_PROGRAM = "sys.argv = ['pipeline-kit', '--version']\nmain()\n"


def said_at_exit(report: str, call: str = AS_THE_PROGRAM) -> str:
    """What the f-string `report` says at the exit of a process that calls the kit's `main` as
    `call` does: as the program itself (the default), or as a caller in its own process. `before`
    is the collector's threshold before the kit was imported."""
    script = (
        "import atexit, gc, sys\n"
        "before = gc.get_threshold()\n"
        f"atexit.register(lambda: sys.__stderr__.write(f{report!r}))\n"
        "from pipeline_kit.cli import main\n" + call
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_the_program_writes_stdout_line_by_line_into_a_pipe() -> None:
    # click.echo flushes each call; anything else writing to stdout (a library's print) must not
    # sit in a block buffer while later progress on stderr reaches the log first.
    assert said_at_exit("{sys.stdout.line_buffering} {sys.stderr.line_buffering}") == "True True"


def test_the_program_leaves_its_objects_to_the_exit_and_a_caller_keeps_its_own() -> None:
    # The interpreter's collections at exit would walk every object of the run (a tenth of a
    # second after signing): the program freezes them once its command is done, and collects
    # less often while it runs. A caller that runs `main` in its own process (the tests, an
    # embedding) keeps its collector as it was.
    report = "{gc.get_freeze_count() > 0} {gc.get_threshold() == before}"
    assert said_at_exit(report) == "True False"
    caller = "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
    assert said_at_exit(report, caller) == "False True"
