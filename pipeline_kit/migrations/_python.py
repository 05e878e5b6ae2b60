"""What the Python layouts (Alembic, Django) share: reading literal values off the syntax tree."""

from __future__ import annotations

import ast
from typing import Any

from pipeline_kit.migrations.layout import NotLiteral


def callee(node: ast.expr) -> str:
    """The name called (`Column` for `sa.Column(...)`), or named (`Integer` for `sa.Integer`)."""
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def value(node: ast.expr) -> Any:
    """The literal `node` spells out; NotLiteral for anything computed."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise NotLiteral(ast.unparse(node)) from None
