"""Mermaid flowcharts for job summaries (GitHub renders them in a step summary, GitLab in any
Markdown): the environments with their verdicts, a rollout's steps, a release plan's DAG.

Names and reasons come from configs, ledgers and servers, so every label is written in a
character set that cannot end it: letters, digits and a few marks stay, every other character
(quotes, brackets, `#`, `;`, backticks, `<`, line breaks, non-ASCII) becomes Mermaid's numeric
entity `#<code>;`, which it shows as that character, as text. Node ids are made here, never taken
from data. Labels are bounded in length; a diagram is bounded in nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# What each state looks like; a diagram declares the classes it uses.
STYLES = {
    "passed": "fill:#d4f7d4,stroke:#1a7f37,color:#0b3d1a",
    "failed": "fill:#ffd8d3,stroke:#cf222e,color:#5c0b0b",
    "error": "fill:#ffe7c2,stroke:#bc4c00,color:#4a2100",
    "running": "fill:#dbeafe,stroke:#0969da,color:#0a2a5c",
    "waiting": "fill:#f6f8fa,stroke:#8c959f,color:#24292f,stroke-dasharray:4 3",
    "compensated": "fill:#fff4c2,stroke:#9a6700,color:#3d2a00",
}
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:/%+=@_-")
MAX_LABEL = 160  # characters of one line of a label, before encoding
MAX_NODES = 200  # a bigger diagram is cut, and says so


def escape(text: str, limit: int = MAX_LABEL) -> str:
    """`text` as one line of a quoted Mermaid label that shows exactly it (cut at `limit`)."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return "".join(c if c in SAFE else f"#{ord(c)};" for c in text)


@dataclass(frozen=True)
class Node:
    lines: tuple[str, ...]  # the label's lines, plain text
    state: str  # a key of STYLES


@dataclass(frozen=True)
class Flowchart:
    nodes: Sequence[Node]
    edges: Sequence[tuple[int, int]]  # (from, to) as indexes into nodes
    direction: str = "LR"

    def text(self) -> str:
        shown = list(self.nodes[:MAX_NODES])
        lines = [f"flowchart {self.direction}"]
        for index, node in enumerate(shown):
            label = "<br/>".join(escape(line) for line in node.lines)
            lines.append(f'  n{index}["{label}"]:::{node.state}')
        if len(self.nodes) > MAX_NODES:
            lines.append(f'  more["{len(self.nodes) - MAX_NODES} more not shown"]:::waiting')
        lines += [f"  n{a} --> n{b}" for a, b in self.edges if a < len(shown) and b < len(shown)]
        for state in sorted({node.state for node in shown} | ({"waiting"} if len(self.nodes) > MAX_NODES else set())):
            lines.append(f"  classDef {state} {STYLES[state]}")
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """The chart in a ```mermaid fence (no label can hold a backtick: the fence stays closed)."""
        return f"```mermaid\n{self.text()}```\n"


def chain(nodes: Sequence[Node]) -> Flowchart:
    """Nodes one after another."""
    return Flowchart(nodes, [(i, i + 1) for i in range(len(nodes) - 1)])


def graph(named: Iterable[tuple[str, Node, Sequence[str]]], direction: str = "LR") -> Flowchart:
    """Nodes by name with the names each comes after (unknown names ignored)."""
    items = list(named)
    index = {name: i for i, (name, _, _) in enumerate(items)}
    edges = [(index[before], index[name]) for name, _, after in items for before in after if before in index]
    return Flowchart([node for _, node, _ in items], edges, direction)
