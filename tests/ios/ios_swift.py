"""Reading the iOS app's Swift sources with tree-sitter: syntax errors, the values in
``ModelContract.swift``, and the string literals of every other file. This is the only check the
app target's UI and Core ML files get off a Mac; the MNISTDemoCore package is also compiled and
tested (swift_package.py)."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "ios_demo"
CORE_DIR = APP_DIR / "MNISTDemoCore"
CONTRACT_FILE = CORE_DIR / "Sources" / "MNISTDemoCore" / "ModelContract.swift"
CONTRACT_ENUM = "ModelContract"


@cache
def parser():
    import tree_sitter_swift
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_swift.language()))


def swift_files() -> list[Path]:
    """Every Swift source of the app and its package; not build products (SwiftPM's .build/)."""
    return sorted(p for p in APP_DIR.rglob("*.swift")
                  if not any(part.startswith(".") for part in p.relative_to(APP_DIR).parts))


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 1-based
    column: int
    kind: str  # "error" (unparseable text) or "missing" (a token the parser had to invent)
    text: str

    def __str__(self) -> str:
        return f"line {self.line}:{self.column}: {self.kind} near {self.text!r}"


def syntax_problems(source: bytes) -> list[SyntaxProblem]:
    """Every ERROR and MISSING node: empty exactly when tree-sitter parsed the file cleanly."""
    tree = parser().parse(source)
    problems: list[SyntaxProblem] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            text = source[node.start_byte:node.end_byte].decode("utf-8", "replace")[:40]
            problems.append(SyntaxProblem(node.start_point[0] + 1, node.start_point[1] + 1,
                                          "missing" if node.is_missing else "error", text or node.type))
        elif node.has_error:
            stack.extend(node.children)
    if tree.root_node.has_error and not problems:
        problems.append(SyntaxProblem(1, 1, "error", "(unlocated)"))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _text(node, source: bytes) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8")


def _string_value(node, source: bytes) -> str:
    """A plain line string literal's value; interpolations are not contract values, so refused."""
    parts = []
    for child in node.children:
        if child.type == "line_str_text":
            parts.append(_text(child, source))
        elif child.type == "str_escaped_char":
            parts.append(_text(child, source).encode().decode("unicode_escape"))
        elif child.type != '"':
            raise ValueError(f"string literal {_text(node, source)!r} is not a constant")
    return "".join(parts)


_ARITHMETIC = {"*": operator.mul, "/": operator.truediv, "+": operator.add, "-": operator.sub}


def constant_value(node, source: bytes):
    """The value of a constant expression: strings, numbers, arrays, simple arithmetic."""
    kind = node.type
    if kind == "line_string_literal":
        return _string_value(node, source)
    if kind == "integer_literal":
        return int(_text(node, source).replace("_", ""), 0)
    if kind == "real_literal":
        return float(_text(node, source).replace("_", ""))
    if kind == "boolean_literal":
        return _text(node, source) == "true"
    if kind == "array_literal":
        return [constant_value(c, source) for c in node.named_children]
    if kind in ("multiplicative_expression", "additive_expression"):
        left, op, right = node.children
        return _ARITHMETIC[_text(op, source)](constant_value(left, source), constant_value(right, source))
    raise ValueError(f"cannot evaluate {kind} {_text(node, source)!r} as a constant")


def _type_name(declaration, source: bytes) -> str | None:
    for child in declaration.children:
        if child.type == "type_identifier":
            return _text(child, source)
    return None


def _enum_constants(body, source: bytes, prefix: str, out: dict) -> None:
    for member in body.named_children:
        if member.type == "property_declaration":
            name = member.child_by_field_name("name")
            value = member.child_by_field_name("value")
            if name is None or value is None:
                continue
            out[prefix + _text(name, source)] = constant_value(value, source)
        elif member.type == "class_declaration":
            nested = _type_name(member, source)
            inner = next((c for c in member.children if c.type.endswith("class_body")), None)
            if nested and inner is not None:
                _enum_constants(inner, source, f"{prefix}{nested}.", out)


def read_contract(source: bytes, enum_name: str = CONTRACT_ENUM) -> dict:
    """The ``static let`` constants of ``enum ModelContract`` (nested enums as ``Server.modelName``)."""
    problems = syntax_problems(source)
    if problems:
        raise ValueError(f"{enum_name} source does not parse: {problems[0]}")
    tree = parser().parse(source)
    for node in tree.root_node.named_children:
        if node.type == "class_declaration" and _type_name(node, source) == enum_name:
            body = next(c for c in node.children if c.type.endswith("class_body"))
            out: dict = {}
            _enum_constants(body, source, "", out)
            return out
    raise ValueError(f"no 'enum {enum_name}' at the top level")


def string_literals(source: bytes) -> list[tuple[int, str]]:
    """(line, value) of every string literal; interpolated parts are skipped, the text kept."""
    tree = parser().parse(source)
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in ("line_string_literal", "multi_line_string_literal"):
            text = "".join(_text(c, source) for c in node.children
                           if c.type in ("line_str_text", "multi_line_str_text"))
            found.append((node.start_point[0] + 1, text))
        stack.extend(node.children)
    return sorted(found)


def identifiers(source: bytes) -> list[tuple[int, str]]:
    """(line, name) of every identifier and type name, to catch the generated class used by name."""
    tree = parser().parse(source)
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in ("simple_identifier", "type_identifier"):
            found.append((node.start_point[0] + 1, _text(node, source)))
        stack.extend(node.children)
    return sorted(found)
