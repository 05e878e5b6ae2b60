"""`pipeline-kit init`: a commented starter pipeline-kit.yml for the project at hand."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from pipeline_kit._internal.files import CONFIG_NAMES, read_toml
from pipeline_kit._internal.fs import atomic_write
from pipeline_kit._internal.proc import git
from pipeline_kit._internal.redact import repository_web_uri
from pipeline_kit.config import parse_config
from pipeline_kit.errors import ConfigError, EnvironmentFailure, PipelineKitError, UsageError
from pipeline_kit.identity import KIT_WORKFLOWS_SAN_REGEX, kit_workflows_san_regex

# Never committed, never packaged: npm packs what .gitignore does not exclude (absent .npmignore
# or `files`), so the evidence of one build would otherwise end up in the next build's package.
IGNORED = (".pipeline-kit/", ".pipeline-kit-ledger/")
# What building a Python project leaves in the tree (setuptools' build dir and metadata): in
# .gitignore only, as an npm package or a Go project may ship or commit a build/ of its own.
PYTHON_BUILD_IGNORED = ("build/", "*.egg-info/")


@dataclass(frozen=True)
class Project:
    name: str
    build: str
    outputs: tuple[str, ...]
    sources: tuple[str, ...]
    repository: str | None
    version: str | None = None


def detect_project(directory: Path) -> Project:
    from pipeline_kit.sbom import detect

    name, version, build, outputs = _build_system(directory)
    remote = git(directory, "remote", "get-url", "origin")
    return Project(
        name=name,
        build=build,
        outputs=outputs,
        sources=tuple(spec.label for spec in detect(directory)),
        repository=repository_web_uri(remote) if remote else None,
        version=version,
    )


def _metadata(path: Path, *keys: str) -> dict[str, object]:
    """The table at `keys` of a TOML or JSON manifest; empty when unreadable."""
    try:
        data: object = read_toml(path) if path.suffix == ".toml" else json.loads(path.read_text())
    except (PipelineKitError, OSError, ValueError):
        return {}
    for key in keys:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def _build_system(directory: Path) -> tuple[str, str | None, str, tuple[str, ...]]:
    """(name, version, build command, output globs) of the project's build system."""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "-", directory.resolve().name) or "app"

    def named(meta: dict[str, object]) -> tuple[str, str | None]:
        version = meta.get("version")
        return str(meta.get("name") or fallback), str(version) if isinstance(version, str) else None

    if (directory / "pyproject.toml").is_file():
        name, version = named(_metadata(directory / "pyproject.toml", "project"))
        # pip builds the wheel with the project's own backend; SOURCE_DATE_EPOCH (set by the kit
        # from the last commit) makes its timestamps, hence its digest, the same every time
        return name, version, "python -m pip wheel --no-deps --wheel-dir dist .", ("dist/*.whl",)
    if (directory / "package.json").is_file():
        manifest = _metadata(directory / "package.json")
        name, version = named(manifest)
        scripts = manifest.get("scripts")
        build = "npm run build && " if isinstance(scripts, dict) and "build" in scripts else ""
        return name, version, f"{build}mkdir -p dist && npm pack --pack-destination dist", ("dist/*.tgz",)
    if (directory / "Cargo.toml").is_file():
        name, version = named(_metadata(directory / "Cargo.toml", "package"))
        # --remap-path-prefix keeps the checkout's path out of the binary; --locked builds exactly
        # the committed Cargo.lock (a `cargo new` project has none yet: cargo would refuse)
        locked = " --locked" if (directory / "Cargo.lock").is_file() else ""
        build = f'RUSTFLAGS="--remap-path-prefix=$PWD=." cargo build --release{locked}'
        return name, version, build, (f"target/release/{name}",)
    if (directory / "go.mod").is_file():
        return fallback, None, "mkdir -p dist && go build -trimpath -buildvcs=false -o dist/ ./...", ("dist/*",)
    return fallback, None, "make dist", ("dist/*",)


@dataclass(frozen=True)
class ForgeIdentity:
    issuer: str
    san_regex: str  # `{path}` is the escaped repository path
    note: str
    caller_regex: str | None = None  # the repository's workflow that calls the signing, at its refs


# What a release workflow's keyless certificate says on each public forge.
FORGE_IDENTITIES = {
    "github.com": ForgeIdentity(
        issuer="https://token.actions.githubusercontent.com",
        san_regex=KIT_WORKFLOWS_SAN_REGEX,
        note="the kit's signing workflows (docs/signing-layouts.md), for your repository below",
        caller_regex=r"^https://github\.com/{path}/\.github/workflows/(release\.yml@refs/tags/v.*|rollback\.yml@refs/heads/main)$",
    ),
    "gitlab.com": ForgeIdentity(
        issuer="https://gitlab.com",
        san_regex=r"^https://gitlab\.com/{path}//\.gitlab-ci\.yml@refs/(heads/main|tags/v.*)$",
        note="GitLab signs as the project's top-level CI config (note the `//`)",
    ),
}


def scalar(value: str, *, quoted: bool = False) -> str:
    """`value` as one YAML scalar on one line, written by the YAML library: quoted where YAML
    needs it (a leading `@`, `: `, ` #`, `yes`, ...), double-quoted (with escapes) where it would
    take several lines, and always double-quoted when `quoted` (a version must stay a string)."""
    if not quoted:
        text = yaml.safe_dump(value, allow_unicode=True, width=_ONE_LINE).removesuffix("\n...\n").rstrip("\n")
        if "\n" not in text:
            return text
    return yaml.safe_dump(value, allow_unicode=True, width=_ONE_LINE, default_style='"').rstrip("\n")


_ONE_LINE = 2**31 - 1  # the emitter folds a scalar longer than its width onto several lines


def installed_kit_commit() -> str | None:
    """The commit of the kit's repository this kit was installed from (pip's record of a
    `git+https://...@<commit>` install), if it was."""
    import importlib.metadata

    try:
        record = json.loads(importlib.metadata.distribution("pipeline-kit-release").read_text("direct_url.json") or "")
        commit = record["vcs_info"]["commit_id"]
    except (importlib.metadata.PackageNotFoundError, ValueError, KeyError, TypeError):
        return None
    return commit if isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def forge_identity(repository: str | None) -> tuple[str, str, str, str | None] | None:
    """(issuer, san-regex, note, caller-regex) of a release workflow's signature on this
    repository's forge; None off the public forges."""
    parts = urlsplit(repository) if repository else None
    forge = FORGE_IDENTITIES.get(parts.hostname or "") if parts else None
    if parts is None or forge is None:
        return None
    path = re.escape(parts.path.strip("/"))
    caller = forge.caller_regex.replace("{path}", path) if forge.caller_regex else None
    san_regex, note = forge.san_regex.replace("{path}", path), forge.note
    if san_regex == KIT_WORKFLOWS_SAN_REGEX:  # the kit's workflows: at this kit's commit, when known
        commit = installed_kit_commit()
        san_regex = kit_workflows_san_regex(commit)
        note += (
            f", at the commit this kit was installed from ({commit[:12]})"
            if commit
            else "; put the kit commit you call them by in place of [0-9a-f]{40} (any commit matches a fork's too)"
        )
    return forge.issuer, san_regex, note, caller


def identity_example(repository: str | None) -> str:
    """signing.identity as a release workflow calling the kit's signing workflows would need it:
    the block `init` comments out, and prints, when it cannot derive the identity."""
    return (
        "identity:                     # who must have signed evidence for it to count\n"
        "  issuer: https://token.actions.githubusercontent.com\n"
        f"  san-regex: {KIT_WORKFLOWS_SAN_REGEX}\n"
        f"  repository: {scalar(repository) if repository else 'https://github.com/OWNER/REPO'}\n"
    )


def identity_gap(project: Project) -> str | None:
    """Why `init` could not derive signing.identity, or None when it did."""
    if project.repository is None:
        return "no git remote `origin` here (not a git repository, or no remote yet)"
    if forge_identity(project.repository) is None:
        return f"origin {project.repository} is not on github.com or gitlab.com, whose CI identities the kit knows"
    return None


def identity_block(repository: str | None) -> str:
    """The signing identity a release workflow on this forge will have, as YAML lines."""
    identity = forge_identity(repository)
    if repository is None or identity is None:
        return "".join(f"  # {line}\n" for line in identity_example(None).splitlines())
    issuer, san_regex, note, caller = identity
    calling = (
        "    # the workflow of yours that calls them, and on which refs (the certificate's Build Config URI)\n"
        f"    caller-regex: {scalar(caller)}\n"
        if caller
        else ""
    )
    return (
        "  identity:\n"
        f"    issuer: {scalar(issuer)}\n"
        f"    # {note}\n"
        f"    san-regex: {scalar(san_regex)}\n"
        f"    repository: {scalar(repository)}\n" + calling
    )


def starter_config(project: Project) -> str:
    """The commented starter: the comments are ours, every value from the project is written by
    the YAML library (`scalar`), so no name, command or path can change the document's shape."""
    sources = (
        "\n".join(f"    - {scalar(source)}" for source in project.sources)
        if project.sources
        else "    # - requirements.txt           # none found: the SBOM lists the artifact alone; list lockfiles here"
    )
    outputs = "\n".join(f"    - {scalar(glob, quoted=True)}" for glob in project.outputs)
    signing = identity_block(project.repository)
    version = f"  version: {scalar(project.version, quoted=True)}\n" if project.version else ""
    return f"""\
# pipeline-kit configuration. Reference: https://github.com/pipeline-kit/pipeline-kit#configuration-pipeline-kityml
version: 1

artifact:
  name: {scalar(project.name)}
{version}  # Run once by `pipeline-kit build`; a string runs through /bin/sh, a list runs as-is.
  build: {scalar(project.build)}
  # Files the build produces (globs relative to this directory). Each becomes a release
  # subject, identified by its sha256; every later step refers to that digest.
  outputs:
{outputs}

sbom:
  # Dependency records the CycloneDX SBOM is made from (detected when this key is absent).
  sources:
{sources}

signing:
{signing}
# The same digest moves dev -> staging -> prod. Signature, provenance and SBOM are verified for
# every environment, listed or not; previous-stage (with `after:`) and rollback-hold always run.
environments:
  dev:
    gates: [signature, provenance, sbom]
    # deploy: ./deploy.sh dev          # gets PIPELINE_KIT_DIGEST, PIPELINE_KIT_RELEASE_ID, ...
  staging:
    after: dev                         # a signed promotion to dev is required ...
    soak: 30m                          # ... and this long there
    gates:
      - sbom: {{deny-licenses: [AGPL-3.0-only, GPL-3.0-only]}}
      # - checks: {{junit: "reports/*.xml"}}   # signed by `pipeline-kit attest --junit ...`
  prod:
    after: staging
    soak: 1h
    gates:
      - freeze: {{windows: [{{name: weekend, cron: "0 18 * * FRI", duration: 62h, tz: UTC}}]}}
      # - approvals: {{min: 2}}            # reviews of the merged change, on GitHub or GitLab
"""


def checked_starter(project: Project, target: Path) -> str:
    """The starter for `project`, parsed by the kit's own config loader and found to say exactly
    what was detected; anything else is a bug of ours, raised before a byte is written."""
    text = starter_config(project)
    bug = "this is a pipeline-kit bug: please report it with the project's manifest"
    try:
        config = parse_config(text, Path(f"the starter {target.name}"))
    except ConfigError as exc:
        raise EnvironmentFailure(f"{exc.message}; nothing written", hint=bug) from exc
    identity = config.signing.identity
    expected = forge_identity(project.repository)
    wanted = (
        project.name,
        project.version,
        project.build,
        project.outputs,
        project.sources,
        (expected[0], expected[1], project.repository) if expected else None,
    )
    found = (
        config.artifact.name,
        config.artifact.version,
        config.artifact.build,
        tuple(config.artifact.outputs),
        tuple(entry.path for entry in config.sbom.entries() or ()),
        (identity.issuer, identity.san_regex, identity.repository) if identity else None,
    )
    if found != wanted:
        raise EnvironmentFailure(
            f"the starter {target.name} would say {found!r}, not what was detected, {wanted!r}; nothing written",
            hint=bug,
        )
    return text


def write_starter_config(directory: Path, *, force: bool = False) -> tuple[Path, Project]:
    existing = [directory / n for n in CONFIG_NAMES if (directory / n).exists()]
    if existing and not force:
        raise UsageError(f"{existing[0]} already exists", hint="pass --force to overwrite it")
    target = directory / CONFIG_NAMES[0]
    project = detect_project(directory)
    text = checked_starter(project, target)  # never write a starter the kit itself would reject
    atomic_write(target, text.encode())
    ignore_evidence(directory, project.outputs)
    return target, project


def ignore_evidence(directory: Path, outputs: tuple[str, ...] = ()) -> list[Path]:
    """Add the evidence dir, the ledger and the build's output directories to .gitignore (and
    .npmignore, where one exists): a build must not pack the previous build's outputs or
    evidence. Returns the files changed."""
    wanted = [*IGNORED, *sorted({glob.split("/")[0] + "/" for glob in outputs if "/" in glob})]
    python = PYTHON_BUILD_IGNORED if (directory / "pyproject.toml").is_file() else ()
    changed = []
    # an .npmignore replaces .gitignore for npm: it must also keep the config out of the package
    packed = (*CONFIG_NAMES[:1],)
    for name, create, more in ((".gitignore", True, python), (".npmignore", False, packed)):
        path = directory / name
        if not path.exists() and not create:
            continue
        text = path.read_text() if path.exists() else ""
        missing = [entry for entry in [*wanted, *more] if entry not in text.splitlines()]
        if missing:
            separator = "" if not text or text.endswith("\n") else "\n"
            atomic_write(path, (text + separator + "\n".join(missing) + "\n").encode())
            changed.append(path)
    return changed


def npm_packs_config(directory: Path) -> bool:
    """Whether `npm pack` would put pipeline-kit.yml in the package: a package.json without a
    `files` list and no .npmignore (creating one would make npm stop reading .gitignore)."""
    manifest = directory / "package.json"
    if not manifest.is_file() or (directory / ".npmignore").exists():
        return False
    return not isinstance(_metadata(manifest).get("files"), list)
