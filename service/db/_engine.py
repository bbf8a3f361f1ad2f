"""How repositories reach the engine: through the :class:`~service.db.Database` that owns it."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine


class EngineSource(Protocol):
    @property
    def engine(self) -> AsyncEngine: ...
