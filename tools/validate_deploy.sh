#!/usr/bin/env bash
# Validate the deployment examples offline:
#   - deploy/compose.yaml with `docker-compose config -q` (Debian's docker-compose 1.29, installed if missing;
#     the variables come from deploy/env.example);
#   - deploy/k8s/*.yaml and the built-in kinds of deploy/k8s/dask/ (volume claim, Secret, ConfigMap,
#     NetworkPolicy) against the Kubernetes OpenAPI schemas bundled in the PyPI package kubernetes-validate
#     (strict: unknown fields are errors), for the oldest and newest versions we support;
#   - the Dask operator's custom resources of deploy/k8s/dask/ (DaskCluster, DaskJob) against the CRDs shipped in
#     the dask-kubernetes wheel (fetched with pip download, never installed), strict, by
#     tools/validate_crd_manifests.py, whose --self-check also proves that broken copies are rejected.
#
#   tools/validate_deploy.sh            exit 0 when everything validates
#
# kubernetes-validate lives in its own venv, .venv-deploy (git-ignored), so the service's venv stays as pinned.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
DASK_KUBERNETES="dask-kubernetes==2026.3.0"   # the operator version the DaskCluster / DaskJob manifests target
DASK_KUBERNETES_SHA256=5cf138e03cb1851063b82b74e9fd4679251238e3867fcae1e3682aada6410728  # its wheel on PyPI
K8S_VERSIONS=(1.30.0 1.37.0)   # 1.30: the first with the preStop sleep action (deploy/k8s/deployment.yaml)
VENV=.venv-deploy
PYTHON="${PYTHON:-python3}"

say() { echo "validate_deploy: $*"; }

# --- docker-compose -------------------------------------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
  [[ "$(id -u)" == 0 ]] || { say "docker-compose is missing and I am not root: apt-get install docker-compose"; exit 1; }
  say "installing Debian's docker-compose"
  export DEBIAN_FRONTEND=noninteractive
  apt_get() { apt-get -o DPkg::Lock::Timeout=300 "$@"; }
  apt_get install -y -qq docker-compose >/dev/null 2>&1 || { apt_get update -qq && apt_get install -y -qq docker-compose; }
fi
say "$(docker-compose version --short 2>/dev/null || docker-compose --version)"
# compose checks the file against its schema, resolves the variables (failing on a missing required one)
# and the YAML anchors; it needs no Docker daemon for `config`
docker-compose --env-file deploy/env.example -f deploy/compose.yaml config -q
say "deploy/compose.yaml: valid"

# --- Kubernetes manifests -------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/kubernetes-validate" ]] || ! "$VENV/bin/pip" show -q kubernetes-validate 2>/dev/null \
    || [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))')" != "${KUBERNETES_VALIDATE#*==}" ]]; then
  say "installing $KUBERNETES_VALIDATE into $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$KUBERNETES_VALIDATE"
fi
manifests=(deploy/k8s/*.yaml)
for version in "${K8S_VERSIONS[@]}"; do
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
  say "deploy/k8s: ${#manifests[@]} files valid against Kubernetes $version (strict)"
done

# --- Dask operator resources (deploy/k8s/dask/) ---------------------------------------------------
custom=()
builtin=()
for manifest in deploy/k8s/dask/*.yaml; do
  if grep -q '^apiVersion: kubernetes.dask.org/' "$manifest"; then custom+=("$manifest"); else builtin+=("$manifest"); fi
done
for version in "${K8S_VERSIONS[@]}"; do
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "${builtin[@]}"
done
say "deploy/k8s/dask: ${#builtin[@]} files valid against Kubernetes ${K8S_VERSIONS[*]} (strict)"
crds="$VENV/crds/${DASK_KUBERNETES#*==}"
if [[ ! -s "$crds/daskjob.yaml" ]]; then
  say "fetching the CRDs of $DASK_KUBERNETES (pip download, not installed)"
  wheels="$(mktemp -d)"
  echo "$DASK_KUBERNETES --hash=sha256:$DASK_KUBERNETES_SHA256" > "$wheels/requirements.txt"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes \
    -r "$wheels/requirements.txt" -d "$wheels"
  mkdir -p "$crds"
  "$VENV/bin/python" - "$wheels" "$crds" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("dask_kubernetes-*.whl"))
inside = "dask_kubernetes/operator/deployment/helm/dask-kubernetes-operator/crds/"
with zipfile.ZipFile(wheel) as archive:
    for name in ("daskcluster.yaml", "daskjob.yaml"):
        pathlib.Path(sys.argv[2], name).write_bytes(archive.read(inside + name))
PY
  rm -rf "$wheels"
fi
"$VENV/bin/python" tools/validate_crd_manifests.py --self-check \
  --crd "$crds/daskcluster.yaml" --crd "$crds/daskjob.yaml" "${custom[@]}"
say "deploy/k8s/dask: ${custom[*]} valid against the CRDs of $DASK_KUBERNETES (strict; broken copies rejected)"
# --- nginx (the proxy of every example) -----------------------------------------------------------
# nginx -t parses each configuration (directives, their arguments, the limits); the upstream host names
# exist only inside compose / Kubernetes, so they are pointed at 127.0.0.1 in a scratch copy.
if command -v nginx >/dev/null 2>&1; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  cp deploy/nginx.conf "$scratch/compose.conf"
  "$VENV/bin/python" - "$scratch/k8s.conf" <<'PY'
import sys, yaml
docs = yaml.safe_load_all(open("deploy/k8s/proxy.yaml", encoding="utf-8"))
config = next(d for d in docs if d and d.get("kind") == "ConfigMap")["data"]["nginx.conf"]
open(sys.argv[1], "w", encoding="utf-8").write(config)
PY
  for conf in compose k8s; do
    sed -i -E 's/^([[:space:]]*server )[A-Za-z0-9.-]+:([0-9]+)/\1127.0.0.1:\2/' "$scratch/$conf.conf"
    nginx -q -t -p "$scratch" -e stderr -c "$scratch/$conf.conf"
  done
  say "deploy/nginx.conf, deploy/k8s/proxy.yaml (nginx.conf): nginx -t passes"
else
  say "nginx not installed: the proxy configurations are not parsed (apt-get install nginx-core)"
fi
say "all deployment examples are valid"
