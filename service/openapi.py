"""The OpenAPI document, as committed in ``openapi.yaml`` (a test keeps them equal)."""

from __future__ import annotations

from datetime import date

import yaml

from service.main import create_app
from service.settings import Settings

# the document must not depend on the day or the environment
FIXED_DAY = date(2000, 1, 1)


def openapi_document() -> dict:
    return create_app(Settings(mode="demo"), demo_day=FIXED_DAY).openapi()


def openapi_yaml() -> str:
    return yaml.safe_dump(openapi_document(), sort_keys=False, allow_unicode=True, width=120)
