from flask import jsonify

from blueprints.auth import bp
from blueprints.common import (
    api_rate_limit,
    auth_required,
    current_user,
    json_body,
    login_rate_limit,
    login_succeeded,
    register_rate_limit,
)
from services.accounts.quotas import quota_get
from services.accounts.users import token_issue, user_authenticate, user_register


@bp.post("/register")
@register_rate_limit
def register():
    """Create an account and return a token for it."""
    body = json_body()
    user = user_register(email=body.get("email"), password=body.get("password"), username=body.get("username"))
    return jsonify(message="User registered successfully", token=token_issue(user), user=user.to_dict()), 201


@bp.post("/login")
@login_rate_limit
def login():
    """Exchange email and password for a token."""
    body = json_body()
    user = user_authenticate(email=body.get("email"), password=body.get("password"))
    login_succeeded()
    return jsonify(message="Login successful", token=token_issue(user), user=user.to_dict())


@bp.get("/me")
@api_rate_limit
@auth_required
def me():
    """Show the caller's account and plan, and where it stands in its message quota."""
    user = current_user()
    return jsonify(success=True, user=user.to_account_dict(), quota=quota_get(user).to_dict())


@bp.get("/quota")
@api_rate_limit
@auth_required
def quota():
    """The caller's message quota: limit, used, remaining, and when it resets."""
    return jsonify(success=True, quota=quota_get(current_user()).to_dict())
