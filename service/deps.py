"""Named FastAPI dependencies: a route's signature lists what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.main_state import AppState


async def get_state(request: Request) -> AppState:  # async: no thread-pool hop per request
    return request.app.state.hcc


StateDep = Annotated[AppState, Depends(get_state)]
