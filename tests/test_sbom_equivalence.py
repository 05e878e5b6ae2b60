"""The directly written SBOM is the document cyclonedx-python-lib wrote for the same input, byte
for byte (tests/sbom_reference_document.py is the former, library-built render), for every source
kind in the assets and for generated requirements files of a few sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cyclonedx.exception.model import UnknownComponentDependencyException

from pipeline_kit import sbom
from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.sbom.document import render
from pipeline_kit.sbom.interface import Distribution, Hash, Package, SourceResult
from tests import sbom_reference_document as reference
from tests.conftest import ASSETS
from tests.test_sbom_document import make_release


def test_every_source_kind_renders_as_the_library_did() -> None:
    results = sbom.read_sources(sbom.detect(ASSETS / "sbom"))
    for release in (make_release("dist/a.whl"), make_release("dist/b.whl", "dist/a.whl", "c")):
        assert render(release, results) == reference.render(release, results)


def test_no_source_renders_as_the_library_did() -> None:
    timeless = make_release("a")
    timeless = timeless.model_copy(update={"build": timeless.build.model_copy(update={"finished_on": None})})
    for release in (make_release("a"), make_release("b", "a"), timeless):
        assert render(release, []) == reference.render(release, [])


@pytest.mark.parametrize("size", [1, 200, 1500])
def test_requirements_of_growing_size_render_as_the_library_did(tmp_path: Path, size: int) -> None:
    # names and versions that sort differently as text and as numbers, a few unpinned
    lines = [f"pkg{i % 97}-{i}=={i % 7}.{i}.0 --hash=sha256:{i:064x}\n" for i in range(size)]
    lines += [f"unpinned{i}\n" for i in range(min(size, 5))]
    (tmp_path / "requirements.txt").write_text("".join(lines))
    results = sbom.read_sources(sbom.detect(tmp_path))
    assert len(results[0].packages) == size + min(size, 5)
    release = make_release("dist/a.whl")
    assert render(release, results) == reference.render(release, results)


def test_orders_the_library_imposed_are_kept() -> None:
    """Ties the assets lack: one name at several versions and none, hashes and distributions
    given out of order, one URL with different hash sets, licences as expression, ids and names."""
    h = [Hash("SHA-256", f"{i:064x}") for i in range(3)]
    packages = (
        Package("b-ref", "same", None, "pkg:pypi/same", licenses=("MIT OR Apache-2.0",)),
        Package("a-ref", "same", "2.0", "pkg:pypi/same@2.0", hashes=(h[2], Hash("SHA-1", "a" * 40), h[0])),
        Package(
            "c-ref",
            "same",
            "10.0",
            "pkg:pypi/same@10.0",
            licenses=("MIT", "Some Custom Licence", "Apache-2.0"),
            distributions=(
                Distribution("https://example.com/z.whl", (h[1],)),
                Distribution("https://example.com/a b.whl", (h[1], h[0])),
                Distribution("https://example.com/a b.whl", (h[1],)),
                Distribution("https://example.com/a b.whl"),
            ),
            properties=(("z", "1"), ("a", "2"), ("a", "1")),
            scope="optional",
            dependencies=("a-ref", "b-ref"),
        ),
        Package("d-ref", "other", "1", None, dependencies=(), licenses=("Some Custom Licence",)),
    )
    results = [SourceResult("lock", "uv", packages, root_dependencies=("c-ref", "a-ref"))]
    release = make_release("dist/a.whl")
    assert render(release, results) == reference.render(release, results)


def test_an_edge_to_a_package_no_source_lists_is_refused_not_written() -> None:
    """The library refused such a graph (its dependencies must name its components); so does
    the direct writer, naming the missing ref, for a package's edge and for the subject's."""
    listed = Package("a-ref", "a", "1", None, dependencies=("ghost-ref",))
    for result in (
        SourceResult("lock", "uv", (listed,)),
        SourceResult("lock", "uv", (Package("a-ref", "a", "1", None),), root_dependencies=("ghost-ref",)),
    ):
        with pytest.raises(EnvironmentFailure, match="ghost-ref"):
            render(make_release("dist/a.whl"), [result])
        with pytest.raises(UnknownComponentDependencyException):
            reference.render(make_release("dist/a.whl"), [result])
