"""Browser hardening headers on every response, and the one Content-Security-Policy.

The dashboard loads only this site's own files (htmx, the Socket.IO client, app.js,
app.css): no inline script, no inline style, no eval, no plugins, never framed. Text a
user or a contact wrote is escaped by Jinja, and even markup that slipped through could
neither run a script nor (htmx being configured with allowEval=false and
selfRequestsOnly=true in base.html) call anything but this site.

A page that needs more than the policy allows asks for it with `@csp(...)`, for that page
alone: `@csp(style_src="'self' 'unsafe-inline'")` replaces just that directive. A response
that carries its own policy (received media's sandbox) keeps it.
"""

from __future__ import annotations

import functools

from flask import Flask, g

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",  # QR codes are PNG data URLs
    "font-src": "'self'",
    "connect-src": "'self'",  # htmx and Socket.IO (its websocket too: 'self' covers ws:/wss: of this host)
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Same-origin only: reset-link tokens in URLs never leave the site, and Flask-WTF's
    # HTTPS Referer check on forms still gets the header it needs.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


def policy_text(overrides: dict[str, str] | None = None) -> str:
    directives = POLICY | (overrides or {})
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def csp(**overrides: str):
    """Relax (or tighten) single directives for one view: `script_src=...` sets `script-src`."""
    directives = {name.replace("_", "-"): value for name, value in overrides.items()}

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            g.csp_overrides = directives
            return view(*args, **kwargs)

        return wrapper

    return decorate


def register(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = policy_text(g.get("csp_overrides"))
        return response
