"""Dashboard test helpers: a user logged in with a cookie, sending what the pages send."""

from __future__ import annotations

import re


def csrf_token(html: str) -> str:
    """The page's CSRF token (base.html puts it in a meta tag for htmx)."""
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


class DashboardUser:
    """A user logged in to the dashboard through its login form, CSRF token and all."""

    def __init__(self, client, account, *, landing: str = "/sessions") -> None:
        self.client = client
        response = client.post(
            "/login",
            data={
                "email": account.email,
                "password": account.password,
                "csrf_token": csrf_token(client.get("/login").get_data(as_text=True)),
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        self.csrf = csrf_token(client.get(landing).get_data(as_text=True))

    def htmx(self, method: str, url: str, **kwargs):
        headers = {"HX-Request": "true", "X-CSRFToken": self.csrf, **kwargs.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)
