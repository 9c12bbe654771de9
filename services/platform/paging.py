"""Page sizes and page numbers given as query parameters."""

from __future__ import annotations

from services.errors import ValidationError


def page_number(value: object, *, default: int, maximum: int, field: str = "limit") -> int:
    """A whole number from 1 up, capped at `maximum` (a page size, a page): `default` when absent."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"'{field}' must be a whole number", code="INVALID_FIELD") from exc
    if number < 1:
        raise ValidationError(f"'{field}' must be at least 1", code="INVALID_FIELD")
    return min(number, maximum)
