"""Each SBOM source lists exactly the packages its file lists, with hashes, edges and no secrets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_kit import sbom
from pipeline_kit.config import SbomSourceType
from pipeline_kit.errors import InputError, PipelineKitError
from pipeline_kit.sbom.interface import Package, SourceResult
from tests.conftest import ASSETS

SBOM_ASSETS = ASSETS / "sbom"
SECRETS = ("s3cret", "tok3n", "SECRET", "pw@", "abc@", "key@", "user:", "bob:", "alice:")


def read(name: str, kind: str | None = None) -> SourceResult:
    spec = sbom.spec_for(SBOM_ASSETS, name, kind)
    return sbom.SOURCES[spec.kind]().read(spec.path, spec.label)


def refs(result: SourceResult) -> dict[str, Package]:
    return {p.ref: p for p in result.packages}


def assert_no_secrets(result: SourceResult) -> None:
    text = repr(result)
    for secret in SECRETS:
        assert secret not in text, secret


def test_registry_covers_every_configurable_type() -> None:
    assert set(sbom.SOURCES) == set(SbomSourceType.__args__)  # type: ignore[attr-defined]


def test_detect_finds_every_format() -> None:
    kinds = sorted({spec.kind for spec in sbom.detect(SBOM_ASSETS)})
    assert kinds == ["cargo", "go", "npm", "pipfile", "poetry", "pylock", "requirements", "uv"]


def test_requirements() -> None:
    result = read("requirements.txt")
    packages = refs(result)
    assert set(packages) == {
        "pkg:pypi/charset-normalizer@3.3.2",  # from the nested -r file
        "pkg:pypi/certifi@2024.2.2",
        "pkg:pypi/idna@3.7",
        "pkg:pypi/requests@2.31.0",
        "pkg:pypi/urllib3",  # unpinned: listed, without a version
        "pkg:pypi/private-lib",
    }
    idna = result.packages[[p.ref for p in result.packages].index("pkg:pypi/idna@3.7")]
    assert [h.value[:8] for h in idna.hashes] == ["82fee1fc", "028ff3aa"]
    assert all(p.dependencies is None for p in result.packages)  # no graph in requirements files
    private = next(p for p in result.packages if p.name == "private-lib")
    assert private.distributions[0].url == "https://git.example.com/private_lib-1.0-py3-none-any.whl"
    assert_no_secrets(result)


def test_poetry() -> None:
    result = read("poetry.lock")
    packages = refs(result)
    assert set(packages) == {
        "pkg:pypi/certifi@2024.2.2",
        "pkg:pypi/pytest@8.1.1",
        "pkg:pypi/iniconfig@2.0.0",
        "pkg:pypi/requests@2.31.0?repository_url=https://pypi.internal.example/simple",
    }
    pytest_pkg = packages["pkg:pypi/pytest@8.1.1"]
    assert pytest_pkg.dependencies == ("pkg:pypi/iniconfig@2.0.0",)  # colorama is not in the lock
    assert pytest_pkg.scope == "optional"
    certifi = packages["pkg:pypi/certifi@2024.2.2"]
    assert [d.url for d in certifi.distributions] == [
        "certifi-2024.2.2-py3-none-any.whl",
        "certifi-2024.2.2.tar.gz",
    ]
    assert certifi.distributions[0].hashes[0].value.startswith("dc383c07")
    assert_no_secrets(result)


def test_uv_excludes_project_and_records_its_edges() -> None:
    result = read("uv.lock")
    names = sorted(p.name for p in result.packages)
    assert names == ["colorama", "flask", "pytest-mock", "werkzeug"]
    flask = next(p for p in result.packages if p.name == "flask")
    werkzeug = next(p for p in result.packages if p.name == "werkzeug")
    colorama = next(p for p in result.packages if p.name == "colorama")
    # a universal lock lists every platform's packages: the Windows-only edge is kept
    assert flask.dependencies == (werkzeug.ref, colorama.ref)
    assert result.root_dependencies is not None
    assert set(result.root_dependencies) == {
        flask.ref,
        next(p.ref for p in result.packages if p.name == "pytest-mock"),
    }
    assert [len(d.hashes) for d in flask.distributions] == [1, 1]
    assert_no_secrets(result)


def test_pipfile() -> None:
    result = read("Pipfile.lock")
    packages = refs(result)
    assert set(packages) == {"pkg:pypi/idna@3.7", "pkg:pypi/mylib", "pkg:pypi/pytest@8.1.1"}
    assert packages["pkg:pypi/idna@3.7"].scope == "required"  # in both sections: a runtime dependency
    assert packages["pkg:pypi/pytest@8.1.1"].scope == "optional"
    assert len(packages["pkg:pypi/idna@3.7"].hashes) == 2
    assert_no_secrets(result)


def test_pylock() -> None:
    result = read("pylock.toml")
    packages = refs(result)
    assert len(packages) == 3
    cattrs = next(p for p in result.packages if p.name == "cattrs")
    attrs = next(p for p in result.packages if p.name == "attrs")
    assert cattrs.dependencies == (attrs.ref,)
    assert attrs.dependencies == ()
    assert next(p for p in result.packages if p.name == "local-thing").version is None
    assert_no_secrets(result)


def test_npm_resolves_nested_node_modules() -> None:
    result = read("package-lock.json")
    packages = refs(result)
    assert set(packages) == {
        "pkg:npm/%40scope/util@1.2.0",
        "pkg:npm/left-pad@1.0.0",
        "pkg:npm/left-pad@1.3.0",
        "pkg:npm/tap@1.0.0",
        "pkg:npm/ws-member@0.0.1",
    }
    util = packages["pkg:npm/%40scope/util@1.2.0"]
    assert util.dependencies == ("pkg:npm/left-pad@1.0.0",)  # its own nested copy wins
    assert packages["pkg:npm/tap@1.0.0"].dependencies == ("pkg:npm/left-pad@1.3.0",)
    assert util.licenses == ("MIT",)
    assert util.hashes[0].algorithm == "SHA-512" and len(util.hashes[0].value) == 128
    assert packages["pkg:npm/tap@1.0.0"].scope == "optional"
    assert result.root_dependencies == (
        "pkg:npm/%40scope/util@1.2.0",
        "pkg:npm/left-pad@1.3.0",
        "pkg:npm/tap@1.0.0",
    )
    assert_no_secrets(result)


def test_go_sum_lists_modules_with_code() -> None:
    result = read("go.sum")
    assert sorted(p.ref for p in result.packages) == [
        "pkg:golang/github.com/google/uuid@v1.6.0",
        "pkg:golang/golang.org/x/sys@v0.20.0",
    ]  # golang.org/x/text appears only as /go.mod: no code of it is in the build


def test_cargo() -> None:
    result = read("Cargo.lock")
    packages = refs(result)
    assert len(packages) == 4
    hello = packages["pkg:cargo/hello@0.1.0"]
    assert hello.dependencies == ("pkg:cargo/cfg-if@1.0.0", "pkg:cargo/log@0.4.21")
    assert packages["pkg:cargo/log@0.4.21"].hashes[0].value.startswith("90ed8c1e")
    assert_no_secrets(result)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("requirements.txt", "!!!bad\n", "line 1: not a valid requirement"),
        ("requirements.txt", "a==1 --hash=md4:zz\n", "line 1: unsupported hash"),
        ("requirements.txt", "--frobnicate\n", "line 1: unsupported option"),
        ("poetry.lock", "[[package]]\nname = 1\n", "package[0].name: expected a string"),
        ("poetry.lock", "not = [toml\n", "invalid TOML"),
        ("uv.lock", "[[package]]\nname='x'\n", "version: missing lock format version"),
        ("uv.lock", "version = 1\npackage = 'x'\n", "package: expected a list"),
        (
            "uv.lock",
            "version = 1\n[[package]]\nname = 'a'\nversion = '1'\ndependencies = [{name = 'ghost'}]\n",
            "dependencies of a: 'ghost' is not in the lock",
        ),
        ("Pipfile.lock", '{"default": {"a": {"hashes": ["nope"]}}}', "default.a.hashes[0]"),
        ("Pipfile.lock", '{"default": ', "line 1: invalid JSON"),
        ("Pipfile.lock", "[]", "expected a table, got a list"),
        ("pylock.toml", "lock-version = '2.0'\n", 'lock-version: expected "1.x"'),
        (
            "package-lock.json",
            '{"lockfileVersion": 1, "dependencies": {}}',
            "lockfileVersion: expected 2 or 3",
        ),
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": []}',
            "packages: expected a table",
        ),
        ("go.sum", "github.com/x/y v1.0.0\n", "line 1"),
        (
            "Cargo.lock",
            "[[package]]\nname='a'\nversion='1'\nchecksum='xyz'\n",
            "package[0].checksum",
        ),
        ("Cargo.lock", "\x00\x01", "invalid TOML"),
        # what would make an invalid CycloneDX document is refused where it is read, exit 2
        ("requirements.txt", "flask==1.0 --hash=md5:abc\n", "line 1: unsupported hash 'md5:abc'"),
        (
            "requirements.txt",
            "pkg @ http://[::1\n",
            "package 'pkg': download location 'http://[::1' is not a valid URL",
        ),
        ("requirements.txt", "pkg==" + "1" * 5000 + "\n", "package 'pkg': version is longer than 1024 characters"),
        # one rule for every reader: a malformed hash is an error, never silently dropped
        (
            "uv.lock",
            "version = 1\n[[package]]\nname = 'x'\nversion = '1'\nsdist = {url = 'https://x/x.tgz', hash = 'nope'}\n",
            "package[0].sdist.hash: malformed hash 'nope'",
        ),
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": {"node_modules/x": {"version": "1", "integrity": "sha512-!!!"}}}',
            "integrity: malformed integrity 'sha512-!!!'",
        ),
        (
            "poetry.lock",
            "[[package]]\nname = 'x'\nversion = '1'\nfiles = [{file = 'x.whl', hash = 'md5:zz'}]\n",
            "files[0].hash: malformed hash 'md5:zz'",
        ),
    ],
)
def test_malformed_records_name_file_and_field(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    (tmp_path / name).write_text(content)
    spec = sbom.spec_for(tmp_path, name, None)
    with pytest.raises(InputError) as caught:
        sbom.read_sources([spec])  # the reader, then the checks every reader's packages get
    assert str(tmp_path / name) in caught.value.message
    assert fragment in caught.value.message, caught.value.message


def test_non_utf8_file_is_input_error(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not valid UTF-8"):
        read_path(tmp_path / "poetry.lock")


def read_path(path: Path) -> SourceResult:
    spec = sbom.spec_for(path.parent, path.name, None)
    return sbom.SOURCES[spec.kind]().read(spec.path, spec.label)


def test_unknown_file_kind_needs_explicit_type(tmp_path: Path) -> None:
    with pytest.raises(PipelineKitError, match="cannot tell what kind"):
        sbom.spec_for(tmp_path, "deps.lock", None)


def test_environment_matches_importlib_metadata() -> None:
    spec = sbom.spec_for(Path.cwd(), sys.executable, "environment")
    result = sbom.SOURCES["environment"]().read(spec.path, spec.label)
    script = (
        "import json,sysconfig;from importlib import metadata;"
        "paths=list(dict.fromkeys([sysconfig.get_paths()['purelib'],sysconfig.get_paths()['platlib']]));"
        "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_','-').replace('.','-') for d in metadata.distributions(path=paths)})))"
    )
    expected = json.loads(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    assert sorted(p.purl.split("/")[1].split("@")[0] for p in result.packages if p.purl) == expected
    click = next(p for p in result.packages if p.name.lower() == "click")
    assert click.licenses  # licence metadata is carried over
    pydantic = next(p for p in result.packages if p.name.lower() == "pydantic")
    assert any("pydantic-core" in dep for dep in pydantic.dependencies or ())


def test_environment_inspection_runs_no_code_from_it(tmp_path: Path) -> None:
    """A malicious .pth file in the inspected environment must not run."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    marker = tmp_path / "pwned"
    (site / "evil.pth").write_text(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n")
    dist_info = site / "demo_pkg-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: demo_pkg\nVersion: 1.2.3\nLicense-Expression: MIT OR Apache-2.0\n"
    )
    result = read_path_env(venv / "bin" / "python")
    assert [(p.name, p.version, p.licenses) for p in result.packages] == [("demo_pkg", "1.2.3", ("MIT OR Apache-2.0",))]
    assert not marker.exists()


def read_path_env(python: Path) -> SourceResult:
    spec = sbom.spec_for(python.parent, str(python), "environment")
    return sbom.SOURCES["environment"]().read(spec.path, spec.label)


def test_environment_missing_interpreter(tmp_path: Path) -> None:
    with pytest.raises(PipelineKitError) as caught:
        read_path_env(tmp_path / "nope" / "python")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": {"node_modules/@/": {"version": "1"}}}',
            "cannot tell the package name",
        ),
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": {"node_modules/": {"version": "1"}}}',
            "cannot tell the package name",
        ),
        (
            "poetry.lock",
            "[[package]]\nname = 'x'\nversion = '1'\n[metadata]\nfiles = 1\n",
            "metadata.files: expected a table",
        ),
    ],
)
def test_odd_lockfile_shapes_are_input_errors_not_crashes(
    tmp_path: Path, name: str, content: str, fragment: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=re.escape(fragment)):
        sbom.read_sources([sbom.spec_for(tmp_path, name, None)])
