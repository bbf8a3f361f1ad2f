#!/usr/bin/env bash
# Build a local stand-in for the python:3.11-slim base image with mmdebstrap, as a root-filesystem
# tarball for `docker import` (no registry is needed):
#
#   tools/build_base_image.sh OUT.tar
#   docker import OUT.tar python:3.11-slim
#
# Debian bookworm (minbase) with python3 (3.11), python3-pip, python3-venv, ca-certificates and
# python-is-python3; pip's EXTERNALLY-MANAGED marker removed (as in the official image); the host's
# extra CA certificates (/usr/local/share/ca-certificates/) added, since this machine reaches PyPI
# through a TLS-intercepting egress. The mirrors are the ones this machine's apt uses (read from
# /etc/apt/sources.list*), with the same Acquire::Check-Valid-Until / Check-Date settings.
# HCC_DEBIAN_SOURCES overrides the mirrors: sources.list lines, separated by '|'.
# Needs root and mmdebstrap (apt-get install mmdebstrap). An imported image has no ENV, CMD or
# WORKDIR: the Dockerfile spells out its paths.
# shellcheck disable=SC2016  # the hooks' "$1" is expanded by mmdebstrap's shell, not here
set -euo pipefail

usage() { echo "usage: $0 OUT.tar" >&2; exit 2; }
say() { echo "build_base_image: $*" >&2; }
[[ $# -eq 1 && -n "$1" ]] || usage
out="$1"
suite=bookworm
packages=python3,python3-pip,python3-venv,ca-certificates,python-is-python3

command -v mmdebstrap >/dev/null || { say "mmdebstrap is not installed (apt-get install mmdebstrap)"; exit 1; }

# The Debian sources apt uses here, as "deb [signed-by=...] URI SUITE main" lines for this suite.
debian_sources() {
  python3 - "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'EOF'
import pathlib, re, sys

suite, files = sys.argv[1], sys.argv[2:]
ours = re.compile(rf"^{re.escape(suite)}(-updates|-security)?$")
lines = []

def add(uri, suites, signed_by):
    for s in suites:
        if ours.match(s):
            opts = f"[signed-by={signed_by}] " if signed_by else ""
            line = f"deb {opts}{uri} {s} main"
            if line not in lines:
                lines.append(line)

for name in files:
    path = pathlib.Path(name)
    if not path.is_file():
        continue
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".sources":
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for raw in stanza.splitlines():
                if raw.startswith("#") or ":" not in raw:
                    continue
                key, _, value = raw.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                add(uri, fields.get("suites", "").split(), fields.get("signed-by", ""))
    else:
        for raw in text.splitlines():
            m = re.match(r"^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", raw)
            if m:
                signed = re.search(r"signed-by=(\S+?)[\s\]]", m.group(1) or "")
                add(m.group(2), [m.group(3)], signed.group(1) if signed else "")
print("\n".join(lines))
EOF
}

if [[ -n "${HCC_DEBIAN_SOURCES:-}" ]]; then
  IFS='|' read -r -a sources <<<"$HCC_DEBIAN_SOURCES"
else
  mapfile -t sources < <(debian_sources)
fi
if [[ ${#sources[@]} -eq 0 || -z "${sources[0]}" ]]; then
  say "no Debian '$suite' source found in /etc/apt/sources.list*; set HCC_DEBIAN_SOURCES ('deb URI $suite main|...')"
  exit 1
fi
say "mirrors: $(printf '%s; ' "${sources[@]}")"

aptopts=()
for option in Acquire::Check-Valid-Until Acquire::Check-Date; do
  value="$(apt-config dump "$option" 2>/dev/null | sed -n "s/^$option \"\(.*\)\";$/\1/p" | tail -n 1)"
  [[ -n "$value" ]] && aptopts+=(--aptopt="$option \"$value\"")
done

# The host's extra CA certificates go into the image's /usr/local/share/ca-certificates/.
ca_hook='true'
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  say "adding the host's CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
  ca_hook='mkdir -p "$1/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"'
fi

mkdir -p "$(dirname "$out")"
mmdebstrap \
  --mode=root \
  --variant=minbase \
  --format=tar \
  --include="$packages" \
  "${aptopts[@]}" \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
  --customize-hook="$ca_hook" \
  --customize-hook='chroot "$1" update-ca-certificates' \
  --customize-hook='chroot "$1" python3 -c "import ssl, sys, venv, ensurepip; print(sys.version.split()[0], ssl.OPENSSL_VERSION)"' \
  "$suite" "$out" "${sources[@]}"
say "wrote $out ($(du -h "$out" | cut -f1))"
