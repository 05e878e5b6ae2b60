"""Reading a YAML file of ours: strict (no duplicate keys, no alias bombs), and every problem one
ConfigError naming the file, the line and the key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipeline_kit._internal.validation import dotted, first_problem
from pipeline_kit.errors import ConfigError

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):  # type: ignore[valid-type,misc]
    """Safe YAML loader that refuses duplicate keys instead of silently keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:  # `? [a, b] : ...`: a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


MAX_EXPANDED_NODES = 100_000  # far beyond any real config; an alias bomb is far beyond this


def _node_counts(node: yaml.Node) -> tuple[int, int]:
    """How many nodes the document has as written, and once every alias is expanded (shared
    nodes counted once per reference), computed without expanding anything."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack: list[yaml.Node] = [node]
    while stack:  # post-order without recursion: nesting depth is the input's to choose
        current = stack.pop()
        if id(current) in sizes:
            continue
        sizes[id(current)] = -1
        order.append(current)
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            stack.extend(part for pair in current.value for part in pair)
    for current in reversed(order):
        children: list[yaml.Node] = []
        if isinstance(current, yaml.SequenceNode):
            children = list(current.value)
        elif isinstance(current, yaml.MappingNode):
            children = [part for pair in current.value for part in pair]
        sizes[id(current)] = min(MAX_EXPANDED_NODES + 1, 1 + sum(max(sizes[id(c)], 1) for c in children))
    return len(order), sizes[id(node)]


M = TypeVar("M", bound=BaseModel)


def parse_yaml(text: str, path: Path, model: type[M]) -> M:
    """A YAML file of ours (strict: no duplicate keys, no alias bombs) as `model`; every problem
    is one ConfigError naming the file, the line and the key."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        written, expanded = _node_counts(node) if node is not None else (0, 0)
        if expanded > MAX_EXPANDED_NODES:  # as written, or through aliases (an alias bomb)
            too_big = "has" if written > MAX_EXPANDED_NODES else "expands its YAML aliases to"
            raise ConfigError(path, None, f"the file {too_big} more than {MAX_EXPANDED_NODES:,} values: refused")
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else None
        raise ConfigError(path, where, f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {exc}") from exc
    if data is None:
        raise ConfigError(path, None, "file is empty; expected a mapping starting with `version: 1`")
    if not isinstance(data, dict):
        raise ConfigError(path, "line 1", f"expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc, problem = first_problem(exc)
        line = _line_of(text, loc)
        where = f"line {line}: {dotted(loc)}" if line else dotted(loc)
        raise ConfigError(path, where, problem) from exc


def config_error(path: Path, loc: Sequence[int | str], problem: str) -> ConfigError:
    """A ConfigError for a key found invalid after loading (e.g. gate options)."""
    try:
        line = _line_of(path.read_text(encoding="utf-8"), loc)
    except (OSError, yaml.YAMLError):
        line = None
    where = f"line {line}: {dotted(loc)}" if line else dotted(loc)
    return ConfigError(path, where, problem)


def _line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest YAML node along `loc` (only computed on errors)."""
    node: yaml.Node | None = yaml.compose(text, Loader=_Loader)
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return (key.start_mark.line + 1) if key else line
            key_node = next(k for k, v in node.value if v is match)
            line, node = key_node.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
