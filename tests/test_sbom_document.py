"""The rendered CycloneDX document: valid by cyclonedx-python-lib's strict validator, deterministic."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from pipeline_kit import sbom
from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.models import Build, Release, Source, Subject, release_id
from pipeline_kit.sbom.validate import schema_errors
from tests.conftest import ASSETS, REPOSITORY, Cli, init_repo, sign
from tests.sigstore_instance import LocalSigstore


def make_release(*names: str) -> Release:
    subjects = tuple(Subject(name=n, digest={"sha256": f"{i:064x}"}, size=i) for i, n in enumerate(names, 1))
    return Release(
        id=release_id(subjects),
        name="demo",
        version="1.0.0",
        subjects=subjects,
        source=Source(),
        build=Build(
            platform="local",
            builder_id="local",
            finished_on=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        ),
        kit_version="0",
    )


def strict_errors(data: bytes) -> object:
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode())


@pytest.fixture(scope="module")
def every_source() -> list[sbom.SourceSpec]:
    return sbom.detect(ASSETS / "sbom")


def test_every_source_renders_a_strictly_valid_document(
    every_source: list[sbom.SourceSpec],
) -> None:
    data, results = sbom.generate(make_release("dist/a.whl"), every_source)
    assert strict_errors(data) is None
    document = json.loads(data)
    assert document["specVersion"] == "1.6"
    listed = {p.ref for r in results for p in r.packages}
    assert {c["bom-ref"] for c in document["components"]} == listed  # nothing dropped, nothing invented
    assert len(document["components"]) == len(listed)
    for secret in ("s3cret", "tok3n", "SECRET", ":pw@", "abc@"):
        assert secret not in data.decode()


def test_document_is_deterministic(every_source: list[sbom.SourceSpec]) -> None:
    release = make_release("dist/a.whl")
    first, _ = sbom.generate(release, every_source)
    second, _ = sbom.generate(release, every_source)
    assert first == second
    other, _ = sbom.generate(make_release("dist/b.whl"), every_source)
    assert json.loads(other)["serialNumber"] != json.loads(first)["serialNumber"]
    assert json.loads(first)["metadata"]["timestamp"] == "2026-01-02T03:04:05+00:00"


def test_single_subject_is_the_metadata_component() -> None:
    release = make_release("dist/a.whl")
    data, _ = sbom.generate(release, [sbom.spec_for(ASSETS / "sbom", "uv.lock", None)])
    component = json.loads(data)["metadata"]["component"]
    assert component["name"] == "dist/a.whl"
    assert component["hashes"] == [{"alg": "SHA-256", "content": release.subjects[0].sha256}]


def test_several_subjects_nest_under_the_release() -> None:
    release = make_release("dist/a.whl", "dist/b.tar.gz")
    data, _ = sbom.generate(release, [sbom.spec_for(ASSETS / "sbom", "uv.lock", None)])
    component = json.loads(data)["metadata"]["component"]
    assert component["name"] == "demo"
    assert [(c["name"], c["hashes"][0]["content"]) for c in component["components"]] == [
        (s.name, s.sha256) for s in release.subjects
    ]
    assert strict_errors(data) is None


def test_graph_recorded_only_where_the_source_has_one() -> None:
    specs = [sbom.spec_for(ASSETS / "sbom", n, None) for n in ("uv.lock", "requirements.txt")]
    data, _ = sbom.generate(make_release("a"), specs)
    document = json.loads(data)
    graph = {d["ref"]: d.get("dependsOn", []) for d in document["dependencies"]}
    flask = next(c["bom-ref"] for c in document["components"] if c["name"] == "flask")
    werkzeug = next(c["bom-ref"] for c in document["components"] if c["name"] == "werkzeug")
    colorama = next(c["bom-ref"] for c in document["components"] if c["name"] == "colorama")
    assert graph[flask] == sorted([werkzeug, colorama])
    assert graph[werkzeug] == []  # uv records that werkzeug depends on nothing here
    assert flask in graph["subject:a"]
    assert "pkg:pypi/certifi@2024.2.2" not in graph  # requirements files record no graph: unknown, not "none"


def test_fast_validator_rejects_what_the_strict_one_rejects() -> None:
    document = json.loads(sbom.generate(make_release("a"), [sbom.spec_for(ASSETS / "sbom", "uv.lock", None)])[0])
    document["components"][0]["externalReferences"][0]["url"] = "not a uri at all ::"
    assert schema_errors(document)
    assert strict_errors(json.dumps(document).encode()) is not None
    document["components"][0]["externalReferences"][0]["url"] = "https://example.com/ok"
    document["components"][0]["bogus"] = 1
    assert any("bogus" in e for e in schema_errors(document))


def test_invalid_document_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evidence = EvidenceDir(tmp_path)
    release = make_release("a")
    monkeypatch.setattr("pipeline_kit.sbom.validate.schema_errors", lambda doc, spec_version="1.6": ["x: broken"])
    with pytest.raises(EnvironmentFailure, match="does not validate"):
        sbom.write_sbom(evidence, release, [sbom.spec_for(ASSETS / "sbom", "uv.lock", None)])
    assert not (tmp_path / "sbom.cdx.json").exists()


@pytest.mark.parametrize("names", [("dist/a.whl",), ("dist/a.whl", "dist/b.tar.gz")])
def test_no_dependency_source_is_an_sbom_of_the_artifact_alone(names: tuple[str, ...]) -> None:
    """No lockfile (or `sources: []`): a valid document about the same subjects, listing no
    component, its dependencies marked unknown rather than claimed to be none."""
    release = make_release(*names)
    alone, results = sbom.generate(release, [])
    assert results == [] and strict_errors(alone) is None
    with_source, _ = sbom.generate(release, [sbom.spec_for(ASSETS / "sbom", "uv.lock", None)])
    document, described = json.loads(alone), json.loads(with_source)
    assert document["metadata"]["component"] == described["metadata"]["component"]  # the same subjects
    assert document["serialNumber"] == described["serialNumber"]
    assert "components" not in document
    subjects = [document["metadata"]["component"]["bom-ref"]] + [
        c["bom-ref"] for c in document["metadata"]["component"].get("components", [])
    ]
    assert document["compositions"] == [{"aggregate": "unknown", "dependencies": subjects}]
    assert not [d for d in document.get("dependencies", []) if d["ref"] in subjects]  # no "depends on nothing"
    assert not [p for p in document["metadata"]["properties"] if p["name"] == "pipeline-kit:sbom:source"]
    assert sbom.generate(release, [])[0] == alone  # deterministic


def test_sources_none_is_said_by_sbom_show_and_the_gate(
    cli: Cli, hello: Path, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = hello / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["sbom"] = {"sources": []}  # explicitly none, though uv.lock is right there
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    init_repo(hello, remote=REPOSITORY + ".git")
    assert cli(["build"], cwd=hello).code == 0
    made = cli(["sbom"], cwd=hello)
    assert made.code == 0, made.err
    assert made.out.splitlines()[0] == sbom.ARTIFACT_ALONE
    assert "(CycloneDX 1.6, validated)" in made.out
    assert cli(["provenance"], cwd=hello).code == 0
    assert "SBOM        CycloneDX 1.6, the artifact alone (no dependency source); subjects match" in (
        cli(["show"], cwd=hello).out
    )
    code, err = sign(cli, hello, sigstore, monkeypatch)
    assert code == 0, err
    planned = cli(["plan", "--to", "dev", *policy], cwd=hello)
    assert planned.code == 0, planned.out + planned.err
    assert "signed SBOM of the artifact alone (no dependency source), no denied licence" in planned.out
