"""One place that decides between a whole page and the fragment htmx asked for."""

from flask import make_response, render_template, request


def is_htmx() -> bool:
    """An htmx swap; a boosted link or a history restore (Back after a cache miss) wants the page."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def render(page: str, partial: str | None = None, /, **context):
    """The page for a normal request; just `partial` (which the page includes) for htmx."""
    response = make_response(render_template(partial if partial and is_htmx() else page, **context))
    response.vary.add("HX-Request")  # caches must not serve a fragment for a page, or back
    return response
