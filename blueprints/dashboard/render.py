"""One place that decides between a whole page and the fragment htmx asked for."""

from flask import render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render(page: str, partial: str | None = None, **context) -> str:
    """The page for a normal request; just `partial` (which the page includes) for htmx."""
    return render_template(partial if partial and is_htmx() else page, **context)
