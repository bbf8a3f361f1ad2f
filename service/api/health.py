"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.schemas import Health
from service.build_info import package_version
from service.deps import StateDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness and mode")
async def healthz(state: StateDep) -> Health:
    return Health(status="ok", mode=state.settings.mode, version=package_version(), build=state.build)
