"""The contract wiring (blueprints/contract/wiring.py) on a dialect of its own: a route's schemas,
declared once, check its requests, shape its answers, and make that dialect's document, with
that dialect's error codes; the native dialect's document knows nothing of it."""

from __future__ import annotations

from typing import Literal, NotRequired

import pytest
from flask import Blueprint, Flask
from pydantic import with_config
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from typing_extensions import TypedDict

from blueprints import errors
from blueprints.contract.native import native
from blueprints.contract.wiring import Answer, Contract, ErrorTable, Rule
from blueprints.schemas.fields import ANSWER, CLOSED, whole


@with_config(ANSWER)
class Problem(TypedDict):
    error: str
    message: str
    code: str
    field: NotRequired[str]


@with_config(CLOSED)
class PaintRequest(TypedDict):
    colour: Literal["red", "green"]
    coats: NotRequired[whole(ge=1, le=3)]


@with_config(ANSWER)
class Painted(TypedDict):
    thingId: str
    colour: str


@pytest.fixture
def dialect() -> tuple[Flask, Contract]:
    other = Contract(
        name="other",
        info={"title": "Other", "version": "1"},
        tags=[("Things", "Things to paint")],
        errors=ErrorTable((Rule("BAD_COLOUR", ("colour",)), Rule("TOO_MANY_COATS", ("coats",), ("less_than_equal",)))),
        error_schema=Problem,
        error_titles={400: "Bad request"},
        security_schemes={},
        security=[],
        response_headers={},
    )
    bp = Blueprint("other", __name__)

    @bp.post("/things/<thing_id>/paint")
    @other.operation("paintThing", "Things", Answer(201, "Painted", Painted), errors=(400,))
    @other.request(body=PaintRequest)
    def paint(thing_id: str, body: dict):
        """Paint a thing

        In one colour.
        """
        answer = {"thingId": thing_id, "colour": body["colour"]}
        return answer | ({"secret": "leaked"} if thing_id == "leaky" else {}), 201

    app = Flask(__name__)
    errors.register(app)
    app.register_blueprint(bp, url_prefix="/api/other")
    return app, other


def test_a_request_is_checked_by_its_schema_and_answered_with_the_dialects_codes(dialect):
    app, _ = dialect
    client = app.test_client()
    ok = client.post("/api/other/things/t1/paint", json={"colour": "red", "coats": 2.0})
    assert (ok.status_code, ok.get_json()) == (201, {"thingId": "t1", "colour": "red"})
    for body, code, field in [
        ({"colour": "blue"}, "BAD_COLOUR", "colour"),
        ({"colour": "red", "coats": 4}, "TOO_MANY_COATS", "coats"),
        ({"colour": "red", "coats": "2"}, "INVALID_FIELD", "coats"),
        ({"colour": "red", "brush": "wide"}, "INVALID_FIELD", "brush"),
        ({}, "BAD_COLOUR", "colour"),
    ]:
        refused = client.post("/api/other/things/t1/paint", json=body)
        assert refused.status_code == 400, body
        assert (refused.get_json()["code"], refused.get_json()["field"]) == (code, field), body
    assert client.post("/api/other/things/t1/paint", data="{").get_json()["code"] == "INVALID_JSON"


def test_an_answer_the_schema_does_not_declare_never_leaves(dialect):
    app, _ = dialect
    response = app.test_client().post("/api/other/things/leaky/paint", json={"colour": "green"})
    assert response.status_code == 500
    assert "leaked" not in response.get_data(as_text=True)


def test_each_dialect_has_its_own_document(dialect, app):
    other_app, other = dialect
    document = other.document(other_app, "http://127.0.0.1:5000")
    assert [error.message for error in OPENAPI_31_VALIDATOR.iter_errors(document)] == []
    operation = document["paths"]["/api/other/things/{thingId}/paint"]["post"]
    assert (operation["operationId"], operation["summary"], operation["description"]) == (
        "paintThing",
        "Paint a thing",
        "In one colour.",
    )
    body = document["components"]["schemas"]["PaintRequest"]
    assert body["additionalProperties"] is False and body["required"] == ["colour"]
    assert body["properties"]["coats"] == {"type": "integer", "minimum": 1, "maximum": 3}
    assert operation["responses"]["400"] == {"$ref": "#/components/responses/E400"}
    assert document["components"]["responses"]["E400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert "paintThing" not in str(native.document(app))
