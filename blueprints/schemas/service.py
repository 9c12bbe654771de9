"""The service itself: its health, and this document."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER


@with_config(ANSWER)
class Check(TypedDict):
    ok: bool
    error: NotRequired[str]
    alive: NotRequired[list[str]]


@with_config(ANSWER)
class Health(TypedDict):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Check]


@with_config({"extra": "allow"})
class OpenApiDocument(TypedDict):
    """An OpenAPI 3.1 document."""

    openapi: str
    paths: dict[str, Any]


Html = Annotated[str, Field(description="An HTML page")]
