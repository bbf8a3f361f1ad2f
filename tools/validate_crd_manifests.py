"""Validate custom-resource manifests (deploy/k8s/dask/) against the CustomResourceDefinitions that define them.

    python tools/validate_crd_manifests.py --crd daskcluster.yaml --crd daskjob.yaml MANIFEST... [--self-check]

Each manifest document is matched to a CRD by ``apiVersion`` (group/version) and ``kind`` and validated with
jsonschema against that version's ``schema.openAPIV3Schema``, made strict first: an object with ``properties`` and
neither ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields`` accepts no other field, as the API
server's strict field validation (``kubectl apply --validate=strict``) rejects unknown fields. A misspelt field
is therefore an error, not a field silently pruned.

``--self-check`` also breaks each manifest in ways a hand edit does (a misspelt field at the top and deep in a pod
spec, a number written as a word, a required field removed) and fails unless every broken copy is rejected: proof
that the validation can fail. Exit 0 when everything is as expected, 1 otherwise (messages on stderr), 2 on bad
arguments or unreadable files. Runs in tools/validate_deploy.sh's venv (jsonschema, PyYAML).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the venvs; only its validator is used
import yaml

Schema = dict[str, Any]
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# what every object has and a CRD's schema leaves implicit (the API server checks it): the part of ObjectMeta a
# manifest sets
ROOT_FIELDS: Schema = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "generateName": {"type": "string"},
            "namespace": {"type": "string"},
            "labels": _STRING_MAP,
            "annotations": _STRING_MAP,
        },
    },
}


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema in which objects with declared properties take no undeclared ones."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def load_crds(paths: list[Path]) -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) -> the strict schema of that version, for every version of every CRD file."""
    schemas: dict[tuple[str, str], Schema] = {}
    for path in paths:
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                root = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                root["properties"] = {**ROOT_FIELDS, **root.get("properties", {})}
                schemas[(f"{group}/{version['name']}", kind)] = strict(root)
    return schemas


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(document)"


def errors_of(document: Any, schemas: dict[tuple[str, str], Schema]) -> list[str]:
    """What is wrong with one manifest document (empty: valid)."""
    if not isinstance(document, dict):
        return ["not a mapping"]
    key = (str(document.get("apiVersion")), str(document.get("kind")))
    schema = schemas.get(key)
    if schema is None:
        return [f"no CustomResourceDefinition given for apiVersion {key[0]}, kind {key[1]}"]
    validator = jsonschema.Draft4Validator(schema)  # OpenAPI v3.0 schemas are close to draft 4
    found = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"{_where(e)}: {e.message}" for e in found]
    if not (document.get("metadata") or {}).get("name"):
        problems.append("metadata.name: missing")
    return problems


def _first_container(spec: Any) -> dict[str, Any] | None:
    """The first container of the first pod spec found (a DaskCluster's worker, a DaskJob's job)."""
    if isinstance(spec, dict):
        containers = spec.get("containers")
        if isinstance(containers, list) and containers and isinstance(containers[0], dict):
            return containers[0]
        for value in spec.values():
            found = _first_container(value)
            if found is not None:
                return found
    return None


def broken_copies(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Copies of a valid manifest with one hand-editing mistake each (all must be rejected)."""
    top = copy.deepcopy(document)
    top["spec"]["sepc"] = top["spec"].pop(next(iter(top["spec"])))
    yield "a misspelt field under spec", top
    deep = copy.deepcopy(document)
    container = _first_container(deep["spec"])
    if container is not None:
        container["imagePulPolicy"] = container.pop("imagePullPolicy", "IfNotPresent")
        yield "a misspelt container field", deep
        typed = copy.deepcopy(document)
        typed_container = _first_container(typed["spec"])
        assert typed_container is not None
        typed_container["resources"] = {"limits": {"cpu": ["1"]}}
        yield "a list where a quantity belongs", typed
    worded = copy.deepcopy(document)
    worker = (worded["spec"].get("cluster", {}).get("spec") or worded["spec"]).get("worker")
    if isinstance(worker, dict):
        worker["replicas"] = "two"
        yield "replicas as a word", worded
    missing = copy.deepcopy(document)
    missing["spec"].pop(sorted(missing["spec"])[0])
    yield "a required field removed", missing


def _documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def check(manifests: list[Path], schemas: dict[tuple[str, str], Schema], self_check: bool) -> int:
    failures = 0
    for path in manifests:
        for document in _documents(path):
            problems = errors_of(document, schemas)
            for problem in problems:
                print(f"{path}: {problem}", file=sys.stderr)
            failures += bool(problems)
            if self_check and not problems:
                for what, broken in broken_copies(document):
                    if not errors_of(broken, schemas):
                        print(f"{path}: self-check: {what} was NOT rejected", file=sys.stderr)
                        failures += 1
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate custom resources against their CRDs' schemas (strict).")
    parser.add_argument("--crd", type=Path, action="append", required=True, help="a CustomResourceDefinition file")
    parser.add_argument("--self-check", action="store_true", help="also check that broken copies are rejected")
    parser.add_argument("manifests", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        schemas = load_crds(args.crd)
        failures = check(args.manifests, schemas, args.self_check)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        print(f"validate_crd_manifests: {exc}", file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
