"""Checks that keep rules/ the way issue 21 left it: short functions, thresholds read as typed attributes
(``k.criteria.<group>``, mRECIST's numbers as ``k.mrecist``), in every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rules

RULES_DIR = Path(rules.__file__).parent
MAX_FUNCTION_LINES = 60
MODULES = sorted(RULES_DIR.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_function_is_longer_than_60_lines(path):
    long = [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "knowledge.py"], ids=lambda p: p.name)
def test_thresholds_are_read_as_typed_attributes_not_by_name(path):
    source = path.read_text(encoding="utf-8")
    by_name = [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if (isinstance(node, ast.Attribute) and node.attr in ("threshold", "thresholds", "citation")
            and isinstance(node.value, ast.Name) and node.value.id == "k")
    ]
    assert by_name == [], f"{path.name}: k.threshold / k.thresholds / k.citation on lines {by_name}: use k.criteria"
