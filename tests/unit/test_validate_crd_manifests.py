"""tools/validate_crd_manifests.py: custom resources checked strictly against their CRD (tools/validate_deploy.sh).

A small CRD of the operator's shape stands in for the dask-kubernetes one (fetched by validate_deploy.sh, not here);
when that script has run, the real CRDs also check the shipped deploy/k8s/dask/ manifests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("validate_crd_manifests", ROOT / "tools" / "validate_crd_manifests.py")
assert _spec is not None and _spec.loader is not None
tool = importlib.util.module_from_spec(_spec)
sys.modules["validate_crd_manifests"] = tool
_spec.loader.exec_module(tool)

POD_SPEC = {
    "type": "object",
    "required": ["containers"],
    "properties": {
        "containers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "image": {"type": "string"},
                    "imagePullPolicy": {"type": "string"},
                    "command": {"type": "array", "items": {"type": "string"}},
                    "resources": {"type": "object", "properties": {"limits": {
                        "type": "object",
                        "additionalProperties": {"anyOf": [{"type": "integer"}, {"type": "string"}],
                                                 "x-kubernetes-int-or-string": True}}}},
                },
            },
        },
    },
}
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "spec": {
        "group": "kubernetes.dask.org",
        "names": {"kind": "DaskCluster"},
        "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["scheduler", "worker"],
                    "properties": {
                        "worker": {"type": "object", "required": ["spec"], "properties": {
                            "replicas": {"type": "integer"}, "spec": POD_SPEC}},
                        "scheduler": {"type": "object", "required": ["spec"], "properties": {"spec": POD_SPEC}},
                    },
                },
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }}}],
    },
}
CONTAINER = {"name": "worker", "image": "hcc-cds:latest", "imagePullPolicy": "IfNotPresent", "command": ["dask"],
             "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
MANIFEST: dict[str, Any] = {
    "apiVersion": "kubernetes.dask.org/v1",
    "kind": "DaskCluster",
    "metadata": {"name": "hcc-cds-screening", "labels": {"app.kubernetes.io/name": "hcc-cds"}},
    "spec": {"worker": {"replicas": 2, "spec": {"containers": [CONTAINER]}},
             "scheduler": {"spec": {"containers": [{**CONTAINER, "name": "scheduler"}]}}},
}


@pytest.fixture()
def crd_file(tmp_path: Path) -> Path:
    path = tmp_path / "daskcluster.yaml"
    path.write_text(yaml.safe_dump(CRD), encoding="utf-8")
    return path


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_a_valid_manifest_passes_and_survives_the_self_check(tmp_path, crd_file):
    assert tool.main(["--crd", str(crd_file), "--self-check", str(_write(tmp_path, MANIFEST))]) == 0


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda m: m["spec"]["worker"].__setitem__("replica", 2), "'replica' was unexpected"),
    (lambda m: m["spec"]["worker"]["spec"]["containers"][0].__setitem__("imagePulPolicy", "Always"),
     "'imagePulPolicy' was unexpected"),
    (lambda m: m["spec"]["worker"].__setitem__("replicas", "two"), "'two' is not of type 'integer'"),
    (lambda m: m["spec"].pop("scheduler"), "'scheduler' is a required property"),
    (lambda m: m["metadata"].__setitem__("lables", {}), "'lables' was unexpected"),
    (lambda m: m.__setitem__("kind", "DaskJob"), "no CustomResourceDefinition given"),
])
def test_a_broken_manifest_is_rejected_with_where_and_why(tmp_path, crd_file, capsys, edit, expected):
    broken = yaml.safe_load(yaml.safe_dump(MANIFEST))
    edit(broken)
    assert tool.main(["--crd", str(crd_file), str(_write(tmp_path, broken))]) == 1
    assert expected in capsys.readouterr().err


def test_strict_closes_declared_objects_only():
    schema = tool.strict({"type": "object", "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "string"}}},
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
        "map": {"type": "object", "additionalProperties": {"type": "string"}},
    }})
    assert schema["additionalProperties"] is False and schema["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["open"]
    assert schema["properties"]["map"]["additionalProperties"] == {"type": "string"}


def test_the_self_check_fails_when_the_schema_accepts_anything(tmp_path):
    lax = {**CRD, "spec": {**CRD["spec"], "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    crd = tmp_path / "lax.yaml"
    crd.write_text(yaml.safe_dump(lax), encoding="utf-8")
    assert tool.main(["--crd", str(crd), "--self-check", str(_write(tmp_path, MANIFEST))]) == 1


def test_the_shipped_dask_manifests_against_the_operator_crds():
    crds = ROOT / ".venv-deploy" / "crds" / "2026.3.0"
    if not (crds / "daskjob.yaml").is_file():
        pytest.skip("the dask-kubernetes CRDs are fetched by tools/validate_deploy.sh (not run here yet)")
    manifests = [str(ROOT / "deploy" / "k8s" / "dask" / name) for name in ("daskcluster.yaml", "daskjob.yaml")]
    assert tool.main(["--self-check", "--crd", str(crds / "daskcluster.yaml"), "--crd", str(crds / "daskjob.yaml"),
                      *manifests]) == 0
