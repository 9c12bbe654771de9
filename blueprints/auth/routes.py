from blueprints.auth import bp
from blueprints.common import (
    api_rate_limit,
    auth_required,
    current_user,
    login_rate_limit,
    login_succeeded,
    register_rate_limit,
)
from blueprints.contract.native import AUTHED, PUBLIC, native
from blueprints.contract.wiring import Answer
from blueprints.schemas.auth import AccountView, Credentials, QuotaView, Registration, Token
from services.accounts.quotas import quota_get
from services.accounts.users import token_issue, user_authenticate, user_register


@bp.post("/register")
@native.operation(
    "register",
    "Accounts",
    Answer(201, "Registered: the token to use", Token),
    errors=(400, 409, 413, 429),
    security=PUBLIC,
)
@register_rate_limit
@native.request(body=Registration)
def register(body: dict):
    """Register an account

    Register and get a JWT. Limited per IP (`AUTH_RATE_LIMIT`, 5 per 15 minutes).
    """
    user = user_register(email=body["email"], password=body["password"], username=body.get("username"))
    return {"message": "User registered successfully", "token": token_issue(user), "user": user.to_dict()}, 201


@bp.post("/login")
@native.operation(
    "login",
    "Accounts",
    Answer(200, "Logged in: the token to use", Token),
    errors=(400, 401, 413, 429),
    security=PUBLIC,
)
@login_rate_limit
@native.request(body=Credentials)
def login(body: dict):
    """Log in

    Exchange email and password for a JWT (valid `JWT_EXPIRES_SECONDS`, 7 days).
    """
    user = user_authenticate(email=body["email"], password=body["password"])
    login_succeeded()
    return {"message": "Login successful", "token": token_issue(user), "user": user.to_dict()}


@bp.get("/me")
@native.operation("me", "Accounts", Answer(200, "The account, its plan and its quota", AccountView), errors=AUTHED)
@api_rate_limit
@auth_required
def me():
    """Your account

    The account, its plan and limits, and where it stands in its message quota.
    """
    user = current_user()
    return {"success": True, "user": user.to_account_dict(), "quota": quota_get(user).to_dict()}


@bp.get("/quota")
@native.operation("quota", "Accounts", Answer(200, "Where the account stands in its quota", QuotaView), errors=AUTHED)
@api_rate_limit
@auth_required
def quota():
    """Your message quota

    Its limit, what is used and left, and when it resets.
    """
    return {"success": True, "quota": quota_get(current_user()).to_dict()}
