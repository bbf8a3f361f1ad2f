"""Scan log text for secrets and patient data: tokens, names, birth dates, identifiers.

The service must never log PHI or credentials (PRODUCT.md, "Security"). This scanner is what
proves it: the adversarial tests capture every log record of the ``hcc_cds`` loggers (and the
output of every server process they start) and scan it here at the end of the session.

What it looks for:

- **tokens**: anything shaped like a JWT (``eyJ...``), an ``Authorization``/``Bearer`` value, and
  every exact secret the tests registered (FHIR bearer tokens, signed client JWTs);
- **names**: each demo and cohort patient's full name (``Given Family`` and ``Family, Given``);
- **birth dates**: each patient's birth date (ISO), resolved against the days the demo data was
  loaded (it is dated relative to that day);
- **identifiers**: each patient's MRN (``Patient.identifier.value``, case-sensitive) and the
  Patient resource id where it names a person's record (``demo-eligible``, ``cohort-07``...): raw
  paths carry patient ids and must not be logged either.

The list is built from ``service/demo/data`` and ``service/demo/data/cohort`` (synthetic data);
tests add the synthetic patients they make up themselves with :meth:`Scanner.add_patient`.

As a command: ``python tools/log_scan.py LOGFILE...`` (``-`` for stdin) prints every finding and
exits 1 when there is one. ``--day YYYY-MM-DD`` adds a load day for the relative birth dates.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "service" / "demo" / "data"
_RELATIVE_DAY = re.compile(r"^@day([+-]\d+)$")

# a JWT (JWS compact form): three base64url parts, the first a JSON object ("eyJ")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# an Authorization value: "Bearer <token>" (a redacted one, "[redacted]", is fine)
BEARER = re.compile(r"(?i)\bbearer\s+(?!\[redacted\])[A-Za-z0-9\-._~+/]{8,}=*")
# "access_token": "...", access_token=...
TOKEN_PAIR = re.compile(r"(?i)\b(access_token|id_token|refresh_token|client_secret)\W{1,4}(?!\[redacted\])[A-Za-z0-9\-._~+/]{8,}")


@dataclass(frozen=True)
class Finding:
    kind: str  # token | name | birth-date | identifier
    term: str  # what matched (shortened for tokens)
    line: str  # the offending log text (shortened)

    def __str__(self) -> str:
        return f"{self.kind}: {self.term!r} in: {self.line}"


@dataclass
class Scanner:
    """Terms to look for; :meth:`scan` returns every finding in a text."""

    secrets: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    birth_dates: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    _compiled: re.Pattern | None = field(default=None, repr=False)

    # -- building the lists ----------------------------------------------------------------------------

    def add_secret(self, secret: str) -> None:
        if secret and len(secret) >= 8 and secret not in self.secrets:
            self.secrets.add(secret)
            self._compiled = None

    def add_patient(self, patient: dict, days: Iterable[date] = ()) -> None:
        """A Patient resource's name(s), birth date (``@day-N`` resolved against ``days``), MRNs and id."""
        for name in patient.get("name") or []:
            if not isinstance(name, dict):
                continue
            given = " ".join(g for g in name.get("given") or [] if isinstance(g, str))
            family = name.get("family") if isinstance(name.get("family"), str) else ""
            if given and family:
                self.names.update({f"{given} {family}", f"{family} {given}", f"{family}, {given}"})
            if isinstance(name.get("text"), str) and len(name["text"]) >= 6:
                self.names.add(name["text"])
        birth = patient.get("birthDate")
        if isinstance(birth, str):
            relative = _RELATIVE_DAY.match(birth)
            if relative:
                for day in days:
                    self.birth_dates.add((day + timedelta(days=int(relative.group(1)))).isoformat())
            else:
                self.birth_dates.add(birth)
        for identifier in patient.get("identifier") or []:
            value = identifier.get("value") if isinstance(identifier, dict) else None
            if isinstance(value, str) and len(value) >= 5:
                self.identifiers.add(value)
        if isinstance(patient.get("id"), str) and len(patient["id"]) >= 5:
            self.identifiers.add(patient["id"])
        self._compiled = None

    # -- scanning --------------------------------------------------------------------------------------

    def _terms(self) -> re.Pattern:
        if self._compiled is None:
            words = sorted(self.names | self.birth_dates | self.identifiers | self.secrets, key=len, reverse=True)
            # whole words only: "cohort-01" must not match inside "cohort-010"
            alternatives = "|".join(re.escape(w) for w in words) or r"(?!x)x"
            self._compiled = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
        return self._compiled

    def _kind(self, term: str) -> str:
        if term in self.secrets:
            return "token"
        if term in self.names:
            return "name"
        if term in self.birth_dates:
            return "birth-date"
        return "identifier"

    def scan(self, text: str) -> list[Finding]:
        """Every finding in ``text`` (one log line or many)."""
        findings: list[Finding] = []
        for line in text.splitlines() or [text]:
            shown = line if len(line) <= 300 else line[:300] + "..."
            for pattern in (JWT, BEARER, TOKEN_PAIR):
                for match in pattern.finditer(line):
                    findings.append(Finding("token", match.group(0)[:24] + "...", shown))
            for match in self._terms().finditer(line):
                term = match.group(0)
                kind = self._kind(term)
                findings.append(Finding(kind, term if kind != "token" else term[:12] + "...", shown))
        return findings

    def scan_lines(self, lines: Iterable[str]) -> list[Finding]:
        return [f for line in lines for f in self.scan(line)]


def demo_patients() -> list[dict]:
    """The Patient resources of the embedded demo and cohort data (dates still written ``@day-N``)."""
    patients = []
    for folder in (DEMO_DATA, DEMO_DATA / "cohort"):
        for path in sorted(folder.glob("*.json")):
            bundle = json.loads(path.read_text(encoding="utf-8"))
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") or {}
                if resource.get("resourceType") == "Patient":
                    patients.append(resource)
    return patients


def phi_scanner(days: Sequence[date] = ()) -> Scanner:
    """A scanner loaded with every demo and cohort patient; ``days``: the days the demo data was loaded on."""
    today = date.today()
    load_days = {*days, today - timedelta(days=1), today, today + timedelta(days=1)}
    scanner = Scanner()
    for patient in demo_patients():
        scanner.add_patient(patient, load_days)
    return scanner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="log files to scan ('-' for stdin)")
    parser.add_argument("--day", action="append", default=[], help="a day the demo data was loaded on (YYYY-MM-DD)")
    parser.add_argument("--secret", action="append", default=[], help="an exact secret that must not appear")
    args = parser.parse_args(argv)
    scanner = phi_scanner([date.fromisoformat(d) for d in args.day])
    for secret in args.secret:
        scanner.add_secret(secret)
    findings: list[Finding] = []
    for name in args.files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8", errors="replace")
        findings += scanner.scan(text)
    for finding in findings:
        print(finding)
    print(f"log_scan: {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
