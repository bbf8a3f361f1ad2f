"""Incremental runs: an export ``_since`` the previous run holds only what changed, so it is laid over the
previous run's complete file set (its *snapshot*) before anything is assessed.

Every patient is assessed again each run (``as_of`` moves on, and so do the rules' windows); ``_since``
saves only the transfer. A resource in the delta replaces the one with the same type and id in the
snapshot; everything else is kept. Memory holds the delta's ids only (the snapshot streams through).

What an incremental export cannot say, and what is done about it:

* deletions: Bulk Data conveys none, so a resource deleted on the server stays in the snapshot until the
  next full run (``--since none``, or the job API's ``"since": "none"``);
* a patient who joined a Group without a change of their own since the previous run is not in the delta:
  run a full export when the Group's membership changes;
* no usable snapshot (the previous run's folder was removed, or the previous run was not from this source):
  the run falls back to a full export, and its notes say so.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

SNAPSHOT_FILE = "snapshot.json"


class _Id(msgspec.Struct):
    id: str | None = None


_decode_id = msgspec.json.Decoder(_Id).decode


def _resource_id(line: bytes) -> str | None:
    try:
        return _decode_id(line).id
    except msgspec.DecodeError:
        return None  # malformed: kept, so the partitioner counts it as before


def write_snapshot(work: Path, files: Sequence[tuple[str, Path]]) -> None:
    """Record the run's complete file set (what the next incremental run lays its delta over)."""
    listing = [[kind, str(Path(path).resolve())] for kind, path in files]
    temp = work / (SNAPSHOT_FILE + ".part")
    temp.write_text(json.dumps(listing))
    os.replace(temp, work / SNAPSHOT_FILE)


def read_snapshot(work: Path | None) -> list[tuple[str, Path]] | None:
    """The run's complete file set, or None when it is not there any more (then: a full export)."""
    if work is None:
        return None
    try:
        listing = json.loads((work / SNAPSHOT_FILE).read_text())
    except (OSError, ValueError):
        return None
    files = [(str(kind), Path(path)) for kind, path in listing]
    return files if all(path.is_file() for _, path in files) else None


def merge_delta(base: Sequence[tuple[str, Path]], delta: Sequence[tuple[str, Path]], dest: Path) -> list[tuple[str, Path]]:
    """``dest/<Type>.ndjson`` for every type of either: the snapshot's lines whose (type, id) the delta does
    not hold, then the delta's lines."""
    dest.mkdir(parents=True, exist_ok=True)
    replaced: dict[str, set[str]] = defaultdict(set)
    for kind, path in delta:
        with path.open("rb") as lines:
            for line in lines:
                rid = _resource_id(line) if line.strip() else None
                if rid is not None:
                    replaced[kind].add(rid)
    by_type: dict[str, list[tuple[Path, bool]]] = defaultdict(list)
    for kind, path in base:
        by_type[kind].append((path, True))
    for kind, path in delta:
        by_type[kind].append((path, False))
    merged: list[tuple[str, Path]] = []
    for kind in sorted(by_type):
        out_path = dest / f"{kind}.ndjson"
        temp = out_path.with_name(out_path.name + ".part")
        with temp.open("wb") as out:
            for path, from_base in by_type[kind]:
                _copy(path, out, replaced[kind] if from_base else None)
        os.replace(temp, out_path)
        merged.append((kind, out_path))
    return merged


def _copy(path: Path, out: BinaryIO, skip: set[str] | None) -> None:
    with path.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            if skip and _resource_id(line) in skip:
                continue
            out.write(line if line.endswith(b"\n") else line + b"\n")
