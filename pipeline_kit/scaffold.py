"""`pipeline-kit init`: a commented starter pipeline-kit.yml for the project at hand."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline_kit._internal.files import read_toml
from pipeline_kit._internal.fs import atomic_write
from pipeline_kit._internal.proc import git
from pipeline_kit._internal.redact import repository_web_uri
from pipeline_kit.config import CONFIG_NAMES, parse_config
from pipeline_kit.errors import PipelineKitError, UsageError


@dataclass(frozen=True)
class Project:
    name: str
    build: str
    outputs: tuple[str, ...]
    sources: tuple[str, ...]
    repository: str | None


def detect_project(directory: Path) -> Project:
    from pipeline_kit.sbom import detect

    name, build, outputs = _build_system(directory)
    remote = git(directory, "remote", "get-url", "origin")
    return Project(
        name=name,
        build=build,
        outputs=outputs,
        sources=tuple(spec.label for spec in detect(directory)),
        repository=repository_web_uri(remote) if remote else None,
    )


def _build_system(directory: Path) -> tuple[str, str, tuple[str, ...]]:
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "-", directory.resolve().name) or "app"
    if (directory / "pyproject.toml").is_file():
        try:
            name = read_toml(directory / "pyproject.toml").get("project", {}).get("name") or fallback
        except PipelineKitError:
            name = fallback
        return str(name), "python -m pip wheel --no-deps --wheel-dir dist .", ("dist/*.whl",)
    if (directory / "package.json").is_file():
        try:
            name = json.loads((directory / "package.json").read_text()).get("name") or fallback
        except (OSError, ValueError, AttributeError):
            name = fallback
        return str(name), "npm pack --pack-destination dist", ("dist/*.tgz",)
    if (directory / "Cargo.toml").is_file():
        try:
            name = read_toml(directory / "Cargo.toml").get("package", {}).get("name") or fallback
        except PipelineKitError:
            name = fallback
        return str(name), "cargo build --release --locked", (f"target/release/{name}",)
    if (directory / "go.mod").is_file():
        return fallback, "mkdir -p dist && go build -trimpath -o dist/ ./...", ("dist/*",)
    return fallback, "make dist", ("dist/*",)


@dataclass(frozen=True)
class ForgeIdentity:
    issuer: str
    san_regex: str  # `{path}` is the escaped repository path
    note: str


# What a release workflow's keyless certificate says on each public forge.
FORGE_IDENTITIES = {
    "github.com": ForgeIdentity(
        issuer="https://token.actions.githubusercontent.com",
        san_regex=r"^https://github\.com/{path}/\.github/workflows/release\.yml@refs/tags/v.*$",
        note="the workflow that signs: a reusable workflow signs as itself, not as its caller",
    ),
    "gitlab.com": ForgeIdentity(
        issuer="https://gitlab.com",
        san_regex=r"^https://gitlab\.com/{path}//\.gitlab-ci\.yml@refs/(heads/main|tags/v.*)$",
        note="GitLab signs as the project's top-level CI config (note the `//`)",
    ),
}


def identity_block(repository: str | None) -> str:
    """The signing identity a release workflow on this forge will have, as YAML lines."""
    parts = urlsplit(repository) if repository else None
    forge = FORGE_IDENTITIES.get(parts.hostname or "") if parts else None
    if parts is None or forge is None:
        return (
            "  # identity:                     # who must have signed evidence for it to count\n"
            "  #   issuer: https://token.actions.githubusercontent.com\n"
            "  #   san-regex: ^https://github\\.com/OWNER/REPO/\\.github/workflows/release\\.yml@refs/tags/v.*$\n"
        )
    san_regex = forge.san_regex.replace("{path}", re.escape(parts.path.strip("/")))
    return (
        "  identity:\n"
        f"    issuer: {forge.issuer}\n"
        f"    # {forge.note}\n"
        f"    san-regex: {san_regex}\n"
        f"    repository: {repository}\n"
    )


def starter_config(project: Project) -> str:
    sources = (
        "\n".join(f"    - {source}" for source in project.sources)
        if project.sources
        else "    # - requirements.txt           # none found; list lockfiles or use --python"
    )
    outputs = "\n".join(f'    - "{glob}"' for glob in project.outputs)
    signing = identity_block(project.repository)
    return f"""\
# pipeline-kit configuration. Reference: https://github.com/pipeline-kit/pipeline-kit#configuration
version: 1

artifact:
  name: {project.name}
  # Run once by `pipeline-kit build`; a string runs through /bin/sh, a list runs as-is.
  build: "{project.build}"
  # Files the build produces (globs relative to this directory). Each becomes a release
  # subject, identified by its sha256; every later step refers to that digest.
  outputs:
{outputs}

sbom:
  # Dependency records the CycloneDX SBOM is made from (detected when this key is absent).
  sources:
{sources}

signing:
{signing}"""


def write_starter_config(directory: Path, *, force: bool = False) -> Path:
    existing = [directory / n for n in CONFIG_NAMES if (directory / n).exists()]
    if existing and not force:
        raise UsageError(f"{existing[0]} already exists", hint="pass --force to overwrite it")
    target = directory / CONFIG_NAMES[0]
    text = starter_config(detect_project(directory))
    parse_config(text, target)  # never write a starter the kit itself would reject
    atomic_write(target, text.encode())
    return target
