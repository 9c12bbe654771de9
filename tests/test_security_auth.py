"""Authentication: forged and stale tokens, how passwords are stored, guessing limits, and
a fresh login cookie."""

from __future__ import annotations

import base64
import json
import re
import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import select

from extensions import db, socketio
from models import User
from tests.dashboard import csrf_token

SECRET = "test-secret-key-for-signing-tokens-only"  # TestConfig's


def _claims(account, **changes) -> dict:
    now = datetime.now(UTC)
    claims = {
        "sub": account.user_id,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(hours=1),
        "iss": "wagate",
        "aud": "wagate-api",
    }
    return {name: value for name, value in (claims | changes).items() if value is not None}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, default=str).encode()).rstrip(b"=").decode()


def _tampered(token: str, account_id: str) -> str:
    """The token with its payload's `sub` swapped for another account's, signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([header, _b64(claims | {"sub": account_id}), signature])


def _hs512(claims: dict) -> str:
    """Signed with the server's own key, but by another algorithm than the one it accepts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)  # the test key is short for HS512
        return jwt.encode(claims, SECRET, algorithm="HS512")


FORGERIES = {
    "alg none": lambda a, b: jwt.encode(_claims(a), None, algorithm="none"),
    "alg none, upper case": lambda a, b: ".".join([_b64({"alg": "NONE", "typ": "JWT"}), _b64(_claims(a)), ""]),
    "wrong key": lambda a, b: jwt.encode(_claims(a), "not-the-server-key-but-long-enough-32b", algorithm="HS256"),
    "HS512 with the right key": lambda a, b: _hs512(_claims(a)),
    "expired": lambda a, b: jwt.encode(_claims(a, exp=datetime.now(UTC) - timedelta(seconds=5)), SECRET),
    "not valid yet": lambda a, b: jwt.encode(_claims(a, nbf=datetime.now(UTC) + timedelta(hours=1)), SECRET),
    "wrong audience": lambda a, b: jwt.encode(_claims(a, aud="another-api"), SECRET),
    "no audience": lambda a, b: jwt.encode(_claims(a, aud=None), SECRET),
    "wrong issuer": lambda a, b: jwt.encode(_claims(a, iss="someone-else"), SECRET),
    "no issuer": lambda a, b: jwt.encode(_claims(a, iss=None), SECRET),
    "no expiry": lambda a, b: jwt.encode(_claims(a, exp=None), SECRET),
    "unknown user": lambda a, b: jwt.encode(_claims(a, sub="00000000-0000-0000-0000-000000000000"), SECRET),
    "tampered payload": lambda a, b: _tampered(a.token, b.user_id),
    "truncated signature": lambda a, b: a.token[:-4],
    "garbage": lambda a, b: "not.a.token",
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_expired_and_foreign_tokens_are_refused_everywhere(app, client, make_account, forgery):
    owner, other = make_account(), make_account()
    token = FORGERIES[forgery](owner, other)
    headers = {"Authorization": f"Bearer {token}"}
    for url in ("/api/sessions", "/api/me", "/api/messages"):
        response = client.get(url, headers=headers)
        body = response.get_json()
        assert response.status_code == 401, (url, body)
        assert body["code"] in ("INVALID_TOKEN", "TOKEN_EXPIRED") and set(body) >= {"error", "message", "code"}
    # The legacy routes trust loopback callers without credentials, but never one with a bad token.
    legacy = client.get("/api/whatsapp/status", headers=headers)
    assert legacy.status_code == 401
    assert not socketio.test_client(app, flask_test_client=client, auth={"token": token}).is_connected()
    assert client.get("/api/sessions", headers=owner.headers).status_code == 200  # the real one still works


def test_an_expired_token_says_so(client, account):
    token = FORGERIES["expired"](account, account)
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.get_json()["code"]) == (401, "TOKEN_EXPIRED")


def test_issued_tokens_carry_and_need_issuer_audience_and_expiry(app, client, account):
    header = jwt.get_unverified_header(account.token)
    claims = jwt.decode(account.token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("wagate", "wagate-api", account.user_id)
    assert claims["exp"] - claims["iat"] == app.config["JWT_EXPIRES_SECONDS"]
    # The WAMessenger clients' flow, unchanged: log in, then send the token as a bearer.
    login = client.post("/api/login", json={"email": account.email, "password": account.password}).get_json()
    assert client.get("/api/sessions", headers={"Authorization": f"Bearer {login['token']}"}).status_code == 200


ARGON2 = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


def _stored_parameters(app, email: str) -> tuple[int, int, int]:
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash).where(User.email == email))
    match = ARGON2.match(stored)
    assert match, f"not an argon2id hash: {stored[:20]}..."
    return tuple(int(value) for value in match.groups())


def _owasp(parameters: tuple[int, int, int]) -> bool:
    """OWASP's argon2id floor: 19 MiB of memory, 2 iterations, 1 lane."""
    memory_kib, iterations, lanes = parameters
    return memory_kib >= 19 * 1024 and iterations >= 2 and lanes == 1


def test_passwords_are_stored_as_argon2id_at_owasps_parameters_or_above(app, client, account, runner):
    assert _owasp(_stored_parameters(app, account.email))
    # And again after a change of password (the dashboard's form).
    page = client.post(
        "/login",
        data={"email": account.email, "password": account.password, "csrf_token": _csrf(client, "/login")},
    )
    assert page.status_code == 302
    new = "another long password"
    changed = client.post(
        "/account",
        data={"current": account.password, "new": new, "confirm": new, "csrf_token": _csrf(client, "/account")},
    )
    assert changed.status_code == 302
    assert _owasp(_stored_parameters(app, account.email))


def _csrf(client, path: str) -> str:
    return csrf_token(client.get(path).get_data(as_text=True))


BRUTE = {"AUTH_RATE_LIMIT": "5 per 15 minutes"}


@pytest.mark.parametrize("config_overrides", [BRUTE])
def test_guessing_passwords_over_the_api_hits_429(client, account):
    for _ in range(5):
        guess = client.post("/api/login", json={"email": account.email, "password": "wrong guess!"})
        assert guess.status_code == 401
    limited = client.post("/api/login", json={"email": account.email, "password": account.password})
    body = limited.get_json()
    assert (limited.status_code, body["code"]) == (429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) > 0 and limited.headers["X-RateLimit-Limit"] == "5"
    assert "token" not in body  # not even the right password gets through now


@pytest.mark.parametrize("config_overrides", [BRUTE])
def test_guessing_passwords_on_the_dashboard_form_hits_429(client, account):
    token = _csrf(client, "/login")
    for _ in range(5):
        guess = client.post("/login", data={"email": account.email, "password": "wrong guess!", "csrf_token": token})
        assert guess.status_code == 200 and "Invalid email or password" in guess.get_data(as_text=True)
    limited = client.post("/login", data={"email": account.email, "password": account.password, "csrf_token": token})
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert "<html" in limited.get_data(as_text=True)
    assert client.get("/sessions").status_code == 302  # still logged out


@pytest.mark.parametrize("config_overrides", [BRUTE])
def test_the_api_and_the_dashboard_share_one_guessing_budget(client, account):
    token = _csrf(client, "/login")
    for _ in range(3):
        assert client.post("/api/login", json={"email": account.email, "password": "wrong guess!"}).status_code == 401
    for _ in range(2):
        guess = client.post("/login", data={"email": account.email, "password": "wrong guess!", "csrf_token": token})
        assert guess.status_code == 200
    assert client.post("/api/login", json={"email": account.email, "password": "wrong guess!"}).status_code == 429
    form = {"email": account.email, "password": "wrong guess!", "csrf_token": token}
    assert client.post("/login", data=form).status_code == 429


@pytest.mark.parametrize("config_overrides", [BRUTE])
def test_logging_in_with_the_right_password_costs_none_of_the_guessing_budget(client, account):
    # A script that logs in on every run (as the WAMessenger examples do), and a person on the dashboard.
    for _ in range(8):
        assert client.post("/api/login", json={"email": account.email, "password": account.password}).status_code == 200
    form = {"email": account.email, "password": account.password, "csrf_token": _csrf(client, "/login")}
    assert client.post("/login", data=form).status_code == 302
    # The guesses still meet the whole budget, and only it.
    for left in range(4, -1, -1):
        guess = client.post("/api/login", json={"email": account.email, "password": "wrong guess!"})
        assert (guess.status_code, guess.headers["X-RateLimit-Remaining"]) == (401, str(left))
    assert client.post("/api/login", json={"email": account.email, "password": account.password}).status_code == 429


def _cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def test_logging_in_starts_a_new_cookie_session(app, client, account):
    before_token = _csrf(client, "/login")
    before = _cookie(client)
    assert before  # the login form's CSRF token lives in a (not logged-in) cookie session
    response = client.post(
        "/login", data={"email": account.email, "password": account.password, "csrf_token": before_token}
    )
    assert response.status_code == 302
    after = _cookie(client)
    assert after and after != before
    assert client.get("/sessions").status_code == 200

    # The cookie from before the login is not logged in...
    planted = app.test_client()
    planted.set_cookie("session", before)
    assert planted.get("/sessions").status_code == 302
    # ...and the CSRF token it carried does not work in the logged-in session.
    stale = client.post("/sessions", data={"name": "Shop", "csrf_token": before_token})
    assert stale.status_code == 400
    assert csrf_token(client.get("/sessions").get_data(as_text=True)) != before_token


def test_logging_out_drops_the_cookie_session(client, account):
    client.post(
        "/login", data={"email": account.email, "password": account.password, "csrf_token": _csrf(client, "/login")}
    )
    logged_in_token = _csrf(client, "/sessions")
    assert client.post("/logout", data={"csrf_token": logged_in_token}).status_code == 302
    assert client.get("/sessions").status_code == 302
    assert _csrf(client, "/login") != logged_in_token
