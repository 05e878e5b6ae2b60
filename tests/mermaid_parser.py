"""Mermaid's own parser, run by node: what Mermaid makes of a diagram (tests/assets/mermaid-parse.cjs).

The browser bundle of the npm package `mermaid` and `jsdom` are installed by .ci/test-tools into
.ci/tools (the bundle alone, unpacked from the package: no renderer, no browser).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

TOOLS = ROOT / ".ci" / "tools"
BUNDLE = TOOLS / "mermaid" / "mermaid.min.js"
JSDOM = TOOLS / "node_modules" / "jsdom"
SCRIPT = Path(__file__).parent / "assets" / "mermaid-parse.cjs"
FENCE = re.compile(r"^```mermaid\n(.*?)^```$", re.S | re.M)


def parse(texts: list[str]) -> list[dict[str, Any]]:
    """Mermaid's answer for each text: {ok, type, vertices, edges} or {ok: false, error}."""
    node = shutil.which("node")
    if node is None or not BUNDLE.is_file() or not JSDOM.is_dir():
        pytest.fail("node, mermaid.min.js or jsdom is missing: run .ci/test-tools")
    result = subprocess.run(
        [node, str(SCRIPT), str(BUNDLE), str(JSDOM)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answers: list[dict[str, Any]] = json.loads(result.stdout)
    return answers


def diagrams(markdown: str) -> list[str]:
    """The ```mermaid blocks of a Markdown text."""
    return FENCE.findall(markdown)


def shown(label: str) -> str:
    """A label as Mermaid will show it: its entity placeholders decoded, `<br>` as a line break."""
    label = re.sub(r"ﬂ°°(\d+)¶ß", lambda m: chr(int(m.group(1))), label)
    return label.replace("<br>", "\n").replace("<br/>", "\n")


def github_summary(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    """Run the next commands as steps of a GitHub job whose step summary is `path`."""
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "pipeline-kit/hello-service",
        "GITHUB_SHA": "0" * 40,
        "GITHUB_STEP_SUMMARY": str(path),
    }.items():
        monkeypatch.setenv(name, value)
    return path


def charts(markdown: str) -> list[dict[str, Any]]:
    """Every ```mermaid block of `markdown` as Mermaid parsed it, each asserted to parse, its
    vertices as (label shown, class) in order."""
    answers = parse(diagrams(markdown))
    for answer in answers:
        assert answer["ok"], answer["error"]
        answer["shown"] = [(shown(v["text"]), v["classes"]) for v in answer.get("vertices", [])]
    return answers
