"""The release report and the numbers of delivery, from a scripted history signed at scripted
times (tests/scripted_history.py, built once per session): the figures are computed by hand from
the script's minutes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.conftest import Cli
from tests.scripted_history import COMMITTED, Scripted, build_history
from tests.sigstore_instance import LocalSigstore


@pytest.fixture(scope="session")
def scripted(tmp_path_factory: pytest.TempPathFactory, sigstore: LocalSigstore) -> Scripted:
    return build_history(tmp_path_factory.mktemp("history"), sigstore)


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
    args = ["report", *scripted.policy(sigstore), "dora", "--env", "prod"]
    result = cli([*args, "--since", since.isoformat(), "--until", until.isoformat()], cwd=scripted.project)
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()]
    assert rows[1][:2] == ["env", "deploys"]
    # R3: 1 deploy, lead 80m, no failure, deploy time 35m
    assert rows[3] == ["prod", "1", "1.00/day", "1h20m", "0%", "(0/1)", "-", "35m", "-"]
    assert len(rows) == 4  # nothing counted out in this window
    unknown = cli([*args[:-2], "--env", "qa"], cwd=scripted.project)
    assert unknown.code == 2 and "qa" in unknown.err
