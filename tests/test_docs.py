"""The Markdown renders as written: read by a CommonMark parser (markdown-it-py), every fenced block
closes, the headings are the intended ones (a YAML comment or a shell line outside its fence becomes
a heading), and every relative link reaches a file of the repository (and its anchor a heading)."""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from functools import cache
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.conftest import ROOT

DOCS = sorted(
    {
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("actions/*/README.md"),
        *ROOT.glob("gitlab-templates/**/*.md"),
        *ROOT.glob("examples/*/README.md"),
    }
)

# README.md's outline: a heading added, dropped or made out of a stray line fails here.
README_HEADINGS = [
    (1, "pipeline-kit"),
    (2, "Quick start"),
    (2, "Use it from GitHub Actions"),
    (2, "Use it from GitLab CI"),
    (2, "Commands"),
    (3, "Signing identity"),
    (3, "Environment variables"),
    (3, "Exit codes"),
    (2, "Configuration: pipeline-kit.yml"),
    (3, "Gates"),
    (3, "Analysis after the deploy, automatic rollback and kill switches"),
    (3, "Migrations: expand, migrate, contract"),
    (3, "Multi-service releases: a release plan as a saga"),
    (3, "Progressive rollouts: canary and blue-green"),
    (3, "Drift and reconciliation"),
    (3, "Stop the line, org-wide"),
    (3, "Promotion records"),
    (3, "Pictures and dashboards"),
    (2, "Threat model"),
    (2, "The evidence directory"),
    (3, "SBOM"),
    (3, "Provenance"),
    (2, "Performance"),
    (2, "Development"),
    (3, "The local Sigstore instance"),
    (2, "Roadmap"),
]


def parse(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text)


def plain(inline: Token) -> str:
    """A heading's text as rendered (code spans keep their content, markup goes)."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def headings(tokens: list[Token]) -> list[tuple[int, str]]:
    return [(int(token.tag[1]), plain(tokens[i + 1])) for i, token in enumerate(tokens) if token.type == "heading_open"]


def open_fences(text: str, tokens: list[Token]) -> list[int]:
    """1-based lines of the fences nothing closes (CommonMark runs them to the end of their container)."""
    lines = text.splitlines()
    found = []
    for token in tokens:
        if token.type != "fence" or token.map is None:
            continue
        start, end = token.map
        last = re.sub(r"^[ \t>]*", "", lines[end - 1]) if end - 1 > start else ""
        marker = token.markup
        if not re.fullmatch(rf"{re.escape(marker[0])}{{{len(marker)},}}[ \t]*", last):
            found.append(start + 1)
    return found


def markdown_in_fences(tokens: list[Token]) -> list[str]:
    """Lines of a fenced block that are Markdown structure: what a fence closed too late swallowed."""
    return [
        line
        for token in tokens
        if token.type == "fence"
        for line in token.content.splitlines()
        if re.match(r"#{2,6} \S", line) or re.fullmatch(r"\|.*\|\s*", line) or re.match(r"\*\*[^*]+\*\*", line)
    ]


def looks_like_code(heading: str) -> bool:
    """A heading that is a YAML line (`key: value`, `# comment`) or a shell line, not a title."""
    yaml_line = re.match(r"[a-z][\w.-]*:(\s|$)", heading) or re.search(r"\s#\s", heading) or heading.startswith("- ")
    shell_line = (
        re.match(r"(\$ |\./|sudo |export |cd |pipx? |python3? |npm |git |\.venv/)", heading)
        or re.search(r"(^|\s)--?[a-z]|&&|\s\|\s|\$[A-Z_{(]", heading)
        or re.match(r"pipeline-kit \S+ .*[-=]", heading)
    )
    return bool(yaml_line or shell_line)


def slug(text: str) -> str:
    """GitHub's anchor for a heading (github-slugger): lowercase, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(tokens: list[Token]) -> set[str]:
    """The heading anchors (a repeated one gets -1, -2, ...) and the explicit `<a id|name>` ones."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, text in headings(tokens):
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    for token in tokens:
        html = [token] if token.type == "html_block" else [c for c in token.children or [] if c.type == "html_inline"]
        for item in html:
            found |= set(re.findall(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""", item.content))
    return found


def links(tokens: list[Token]) -> list[str]:
    found = []
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs.get("href", "")))
            elif child.type == "image":
                found.append(str(child.attrs.get("src", "")))
    return found


@cache
def tracked() -> frozenset[str]:
    """The repository's files (relative to ROOT): a link to an untracked file is broken on the forge."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False)
    if listed.returncode != 0:  # not a git checkout: the files on disk
        return frozenset(str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file())
    return frozenset(listed.stdout.split("\0")) - {""}


def broken_links(path: Path, tokens: list[Token]) -> list[str]:
    broken = []
    for href in links(tokens):
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", href) or href.startswith("//"):
            continue  # absolute: not the repository's to check
        target_part, _, anchor = href.partition("#")
        target = (path.parent / urllib.parse.unquote(target_part)).resolve() if target_part else path
        try:
            name = target.relative_to(ROOT).as_posix()
        except ValueError:
            broken.append(f"{href}: outside the repository")
            continue
        is_file = name in tracked()
        if not is_file and not any(f.startswith(f"{name}/") for f in tracked()):
            broken.append(f"{href}: no such file in the repository")
        elif anchor and target.suffix == ".md":
            if not is_file or anchor not in anchors(parse(target.read_text())):
                broken.append(f"{href}: no heading or anchor #{anchor} in {name}")
        elif anchor and not re.fullmatch(r"L\d+(-L\d+)?", anchor):
            broken.append(f"{href}: #{anchor} in a file that is not Markdown")
    return broken


def doc_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_every_fenced_block_closes_and_holds_no_markdown(path: Path) -> None:
    text = path.read_text()
    tokens = parse(text)
    assert open_fences(text, tokens) == [], f"{doc_id(path)}: fences left open at these lines"
    assert markdown_in_fences(tokens) == [], f"{doc_id(path)}: Markdown swallowed into a fenced block"


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_no_heading_is_a_stray_yaml_or_shell_line(path: Path) -> None:
    found = [text for _, text in headings(parse(path.read_text())) if looks_like_code(text)]
    assert found == [], f"{doc_id(path)}: headings that are code out of its fence"


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path, parse(path.read_text())) == []


def test_readme_headings_are_the_intended_outline() -> None:
    assert headings(parse((ROOT / "README.md").read_text())) == README_HEADINGS


def test_the_checks_catch_a_stray_fence_and_a_broken_link() -> None:
    # The README as it was: a stray fence closed the configuration block early, so its YAML
    # comments became headings and a later fence ran on, swallowing the sections after it.
    broken = "\n".join(
        [
            "## Configuration",
            "```yaml",
            "signing: {}",
            "```",
            "",
            "flags:",
            "  type: flagd",
            "  # type: unleash",
            "# url: https://unleash.internal",
            "```",
            "",
            "### Gates",
            "",
            "| gate | passes when |",
            "|---|---|",
            "",
            "```sh",
            "pipeline-kit plan --to prod",
            "",
        ]
    )
    tokens = parse(broken)
    assert open_fences(broken, tokens) == [10]
    assert markdown_in_fences(tokens) == ["### Gates", "| gate | passes when |", "|---|---|"]
    assert [text for _, text in headings(tokens) if looks_like_code(text)] == [
        "type: unleash",
        "url: https://unleash.internal",
    ]
    for line in ("type: unleash", "backend: git  # a ref", "token-variable: GH_TOKEN", "$ pipeline-kit plan"):
        assert looks_like_code(line), line
    for line in ("pipeline-kit build", "Configuration: pipeline-kit.yml", "Migrations: expand, migrate, contract"):
        assert not looks_like_code(line), line
    assert slug("Configuration: pipeline-kit.yml") == "configuration-pipeline-kityml"
    assert slug("Analysis after the deploy, automatic rollback and kill switches") == (
        "analysis-after-the-deploy-automatic-rollback-and-kill-switches"
    )
    doc = ROOT / "docs" / "example.md"  # never written: links resolve against the repository
    page = "[a](multi-job.md#verify-in-another-workflow) [b](multi-job.md#nowhere) [c](../no-such.md) [d](#local)"
    assert broken_links(doc, parse(page)) == [
        "multi-job.md#nowhere: no heading or anchor #nowhere in docs/multi-job.md",
        "../no-such.md: no such file in the repository",
        "#local: no such file in the repository",
    ]


# What users are told to install, and how: the docs, the kit's own hints, templates and actions.
INSTRUCTIONS = sorted(
    {
        *DOCS,
        *ROOT.glob("pipeline_kit/**/*.py"),
        *ROOT.glob("gitlab-templates/*.yml"),
        *ROOT.glob("actions/*/action.yml"),
        *ROOT.glob("actions/*/*.sh"),
        *ROOT.glob("examples/**/*.yml"),
        *ROOT.glob(".github/workflows/*.yml"),
    }
)
NOT_OURS = {"pipeline-kit", "pipeline-kit-release"}  # on PyPI another project's, and not published


def installs_by_name(text: str) -> list[str]:
    """`pip`/`pipx`/`uv pip install` commands naming the kit by a name an index would resolve, or
    naming nothing at all (`pipx install` the kit: which one?)."""
    found = []
    for match in re.finditer(r"\b(?:pipx|pip|uv pip|uv tool) install\b([^`\n)]*)", text):
        targets = [t.strip("'\"") for t in match.group(1).split() if not t.startswith(("-", "&", "|", ";"))]
        targets = targets[: next((i for i, t in enumerate(targets) if t in ("&&", "||")), len(targets))]
        if not targets:
            found.append(match.group(0).strip())
        for target in targets:
            name = re.match(r"[A-Za-z0-9._-]*", target)
            if name and re.sub(r"[._-]+", "-", name.group(0).lower()) in NOT_OURS and " @ " not in match.group(1):
                found.append(match.group(0).strip())
    return found


def kit_pins(text: str) -> list[str]:
    """How the kit's actions (`uses: pipeline-kit/pipeline-kit/...@REF`) and templates (`include:
    project: pipeline-kit/pipeline-kit` with `ref: REF`) are pinned, when not by a full commit."""
    refs = re.findall(r"uses: *pipeline-kit/pipeline-kit/[\w./-]+@(<[^>\n]+>|\S+)", text)
    refs += re.findall(r"project: *pipeline-kit/pipeline-kit\b[^\n]*\n(?: +[^\n]*\n)*? +ref: *(<[^>\n]+>|\S+)", text)
    return [ref for ref in refs if not re.fullmatch(r"[0-9a-f]{40}|<[^>]+>", ref)]


@pytest.mark.parametrize("path", INSTRUCTIONS, ids=doc_id)
def test_the_kit_is_never_installed_by_a_name_the_project_does_not_own(path: Path) -> None:
    assert installs_by_name(path.read_text()) == []


@pytest.mark.parametrize("path", INSTRUCTIONS, ids=doc_id)
def test_the_kit_is_pinned_to_a_commit_never_to_a_tag(path: Path) -> None:
    # What the docs describe is unreleased: no tag has it, and a tag can move.
    assert kit_pins(path.read_text()) == []


def test_the_install_checks_catch_a_bare_name_and_a_tag() -> None:
    assert installs_by_name("or `pipx install` the kit") == ["pipx install"]
    assert installs_by_name("pip install 'pipeline-kit-release[contracts]'") == [
        "pip install 'pipeline-kit-release[contracts]'"
    ]
    assert installs_by_name("pip install pipeline_kit==0.1.0 && true") == ["pip install pipeline_kit==0.1.0 && true"]
    assert installs_by_name("pipx install 'git+https://github.com/pipeline-kit/pipeline-kit@" + "a" * 40 + "'") == []
    assert installs_by_name("pip install -e '.[contracts]'") == []
    assert kit_pins("        uses: pipeline-kit/pipeline-kit/actions/release@v0.1.0\n") == ["v0.1.0"]
    gitlab = "  - project: pipeline-kit/pipeline-kit\n    ref: v0.1.0\n    file: x.yml\n"
    assert kit_pins(gitlab) == ["v0.1.0"]
    assert (
        kit_pins(gitlab.replace("v0.1.0", "<kit commit>") + "uses: pipeline-kit/pipeline-kit/actions/x@" + "0" * 40)
        == []
    )
