import time

import jwt
import pytest

from services.accounts.users import password_hasher


def test_register_returns_the_documented_shape(client):
    response = client.post(
        "/api/register", json={"email": "Owner@Example.com", "password": "securepassword123", "username": "johndoe"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["message"] == "User registered successfully"
    assert body["user"]["email"] == "owner@example.com"
    assert body["user"]["username"] == "johndoe"
    assert len(body["user"]["userId"]) == 36
    assert body["token"].count(".") == 2


def test_username_defaults_to_the_email_prefix(client):
    body = client.post("/api/register", json={"email": "shop@example.com", "password": "password123"}).get_json()
    assert body["user"]["username"] == "shop"


def test_login_returns_a_token_that_opens_the_api(client, account):
    response = client.post("/api/login", json={"email": account.email, "password": account.password})
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == "Login successful"
    assert body["user"]["email"] == account.email
    me = client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.get_json()["user"]["plan"]["id"] == "free"


def test_passwords_are_stored_as_argon2id_with_owasp_parameters(app, account):
    from extensions import db
    from models import User

    with app.app_context():
        stored = db.session.get(User, account.user_id).password_hash
    assert stored.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in stored
    assert password_hasher.verify(stored, account.password)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"email": "not-an-email", "password": "password123"}, "INVALID_EMAIL"),
        ({"password": "password123"}, "INVALID_EMAIL"),
        ({"email": "a@example.com", "password": "short"}, "WEAK_PASSWORD"),
        ({"email": "a@example.com", "password": 12345678}, "WEAK_PASSWORD"),
        ({"email": "a@example.com", "password": "password123", "username": 7}, "INVALID_USERNAME"),
    ],
)
def test_register_rejects_bad_input_with_a_clear_400(client, payload, code):
    response = client.post("/api/register", json=payload)
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == code
    assert body["error"] and body["message"]


def test_duplicate_email_is_a_conflict(client, account):
    response = client.post("/api/register", json={"email": account.email.upper(), "password": "password123"})
    assert response.status_code == 409
    assert response.get_json()["code"] == "EMAIL_TAKEN"


def test_wrong_password_is_401(client, account):
    response = client.post("/api/login", json={"email": account.email, "password": "wrong password"})
    assert response.status_code == 401
    assert response.get_json() == {
        "error": "Invalid credentials",
        "message": "Invalid email or password",
        "code": "INVALID_CREDENTIALS",
    }


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_malformed_json_is_a_400_not_a_500(client, body):
    response = client.post("/api/login", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] in {"INVALID_JSON", "INVALID_BODY"}


def test_missing_expired_and_forged_tokens_are_401(app, client, account):
    assert client.get("/api/sessions").get_json()["code"] == "AUTH_REQUIRED"
    claims = jwt.decode(account.token, options={"verify_signature": False})
    expired = dict(claims, exp=int(time.time()) - 10, iat=int(time.time()) - 100, nbf=int(time.time()) - 100)
    expired_token = jwt.encode(expired, app.config["SECRET_KEY"], algorithm="HS256")
    forged_token = jwt.encode(claims, "another-secret-key-that-is-long-enough", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token, code in [(expired_token, "TOKEN_EXPIRED"), (forged_token, "INVALID_TOKEN"), (unsigned, "INVALID_TOKEN")]:
        response = client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.get_json()["code"] == code


def test_every_response_carries_a_request_id(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    echoed = client.get("/api/sessions", headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["X-Request-ID"] == "trace-abc.123"
    replaced = client.get("/api/sessions", headers={"X-Request-ID": "bad id <script>"})
    assert replaced.headers["X-Request-ID"] != "bad id <script>"


def test_unknown_api_routes_answer_in_the_error_shape(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["code"] == "NOT_FOUND"
    assert client.delete("/api/login").get_json()["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("config_overrides", [{"AUTH_RATE_LIMIT": "5 per 15 minutes"}])
def test_auth_routes_allow_five_attempts_per_window_then_429(client):
    for attempt in range(5):
        response = client.post("/api/login", json={"email": "x@example.com", "password": "password123"})
        assert response.status_code == 401
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["X-RateLimit-Remaining"] == str(4 - attempt)
    blocked = client.post("/api/login", json={"email": "x@example.com", "password": "password123"})
    assert blocked.status_code == 429
    assert blocked.get_json()["code"] == "RATE_LIMITED"
    assert int(blocked.headers["Retry-After"]) > 0
    assert int(blocked.headers["X-RateLimit-Reset"]) > time.time()


def test_only_a_refusal_to_come_back_later_carries_retry_after(client, account):
    answers = {
        "200": client.get("/api/sessions", headers=account.headers),
        "400": client.post("/api/sessions", data="{", headers=account.headers),
        "401": client.get("/api/sessions"),
        "401 login": client.post("/api/login", json={"email": account.email, "password": "not the password"}),
    }
    for name, answer in answers.items():
        assert answer.status_code == int(name[:3]), name
        assert "X-RateLimit-Limit" in answer.headers, name  # a rate-limited route all the same
        assert "Retry-After" not in answer.headers, name


@pytest.mark.parametrize("config_overrides", [{"FIRST_USER_IS_ADMIN": True, "DEFAULT_PLAN": "starter"}])
def test_first_account_of_a_self_hosted_server_is_an_enterprise_admin(client, make_account):
    first, second = make_account(), make_account()
    first_me = client.get("/api/me", headers=first.headers).get_json()["user"]
    second_me = client.get("/api/me", headers=second.headers).get_json()["user"]
    assert (first_me["isAdmin"], first_me["plan"]["id"]) == (True, "enterprise")
    assert (second_me["isAdmin"], second_me["plan"]["id"]) == (False, "starter")


def test_cli_moves_an_account_to_another_plan(client, runner, account):
    result = runner.invoke(args=["users", "set-plan", account.email, "growth"])
    assert result.exit_code == 0
    assert "Growth" in result.output
    assert client.get("/api/me", headers=account.headers).get_json()["user"]["plan"]["maxSessions"] == 3
    unknown = runner.invoke(args=["users", "set-plan", account.email, "platinum"])
    assert unknown.exit_code != 0
    assert "known plans: free, starter, growth, business, enterprise" in unknown.output
