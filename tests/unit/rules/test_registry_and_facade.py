"""One rule shape, one ordered list, one facade: ``rules.RULES`` run by ``rules.assess``; ``rules.__all__``."""

from __future__ import annotations

import ast
import inspect
import sys
from datetime import date
from pathlib import Path

import rules
from rules.child_pugh import ChildPugh
from rules.recommendation import Recommendation
from rules.registry import RULES, Prior, run_rules
from tests.unit.rules.factories import make_snapshot

RULES_DIR = Path(rules.__file__).parent
AS_OF = date(2026, 11, 28)


def test_every_public_name_of_the_facade_is_exported_and_real():
    for name in rules.__all__:
        assert getattr(rules, name) is not None, name
    assert sorted(rules.__all__) == sorted(set(rules.__all__))


def test_rule_ids_are_unique_and_every_rule_has_the_one_shape():
    assert len({r.id for r in RULES}) == len(RULES)
    for rule in RULES:
        assert list(inspect.signature(rule.evaluate).parameters) == ["snapshot", "as_of", "k", "prior"], rule.id


def test_each_rule_reads_only_the_results_of_rules_before_it():
    order = [r.id for r in RULES]
    source = inspect.getsource(inspect.getmodule(RULES[0].evaluate))
    tree = ast.parse(source)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    for position, rule in enumerate(RULES):
        reads = {
            node.args[0].value
            for node in ast.walk(functions[rule.evaluate.__name__])
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("of", "maybe")
            and node.args and isinstance(node.args[0], ast.Constant)
        }
        assert reads <= set(order[:position]), (rule.id, reads - set(order[:position]))


def test_running_the_rules_records_a_result_for_each(knowledge):
    prior = run_rules(make_snapshot(), AS_OF, knowledge)
    assert isinstance(prior, Prior)
    for rule in RULES:
        prior.maybe(rule.id, object)  # recorded (None where a rule has nothing to say, e.g. no dose off sorafenib)


def test_assess_is_the_registry_run_and_shaped(knowledge):
    snapshot = make_snapshot()
    assessment = rules.assess(snapshot, AS_OF, knowledge)
    prior = run_rules(snapshot, AS_OF, knowledge)
    assert assessment.child_pugh == prior.of("child_pugh", ChildPugh)
    assert assessment.recommendation == prior.of("recommendation", Recommendation)


def test_the_rules_modules_import_nothing_outside_the_standard_library_and_rules():
    allowed_roots = {"rules", "__future__"}
    stdlib = set(sys.stdlib_module_names)
    for path in RULES_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                root = node.module.split(".")[0]
            elif isinstance(node, ast.Import):
                root = node.names[0].name.split(".")[0]
            else:
                continue
            assert root in allowed_roots or root in stdlib, (path.name, root)
