"""CDS Hooks discovery: ``GET /cds-services``."""

from __future__ import annotations

from fastapi import APIRouter

from service.cds.models import DiscoveryResponse
from service.deps import StateDep

router = APIRouter(tags=["cds-hooks"])


@router.get(
    "/cds-services",
    response_model=DiscoveryResponse,
    response_model_exclude_none=True,
    response_model_by_alias=True,
    summary="CDS Hooks discovery",
)
async def discover(state: StateDep) -> DiscoveryResponse:
    return DiscoveryResponse(services=[s.describe() for s in state.services.values()])
