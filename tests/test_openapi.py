"""The OpenAPI document, made from the routes' schemas, describes exactly the routes the app
has, is valid OpenAPI 3.1, and /docs renders it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from blueprints.contract.native import native
from tests.browser import chromium
from tests.dashboard import DashboardUser
from tests.live import embedded_server

# The public API: JSON routes under these prefixes. The dashboard's HTML pages are not API.
API_PREFIXES = ("/api/", "/sim/", "/healthz")
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def flask_operations(app) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every API route, Flask's <converter:name> as {name} in camelCase."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES):
            continue
        # Another product's dialect (blueprints/<dialect>) is in its own document, tested with it.
        declared = getattr(app.view_functions[rule.endpoint], "contract_operations", {})
        if declared and "native" not in declared:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda match: "{" + _camel(match.group(1)) + "}", rule.rule)
        operations |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return operations


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    }


def test_every_api_route_is_documented_and_every_documented_route_exists(app):
    routes, documented = flask_operations(app), documented_operations(native.document(app))
    assert sorted(routes - documented) == [], "routes without a contract (@native.operation) leave the document"
    assert sorted(documented - routes) == [], "operations the document describes that the app does not have"


def test_the_document_is_valid_openapi_3_1_with_unique_operation_ids(app):
    document = native.document(app, "http://127.0.0.1:5000")
    errors = [error.message for error in OPENAPI_31_VALIDATOR.iter_errors(document)]
    assert errors == []
    ids = [operation["operationId"] for item in document["paths"].values() for operation in item.values()]
    assert len(ids) == len(set(ids))
    # Every path parameter is declared on the operations of its path.
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, operation["operationId"])
    # schemathesis reads it as these operations, every one of them.
    schema = schemathesis.openapi.from_dict(document)
    loaded = {(result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()}
    assert loaded == documented_operations(document)


def test_every_operation_documents_the_error_shape_and_its_security(app):
    document = native.document(app)
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "message", "code"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == schemes["bearerAuth"] | {"type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"] == schemes["apiKeyHeader"] | {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = {int(status) for status in operation["responses"]}
            assert any(status < 300 for status in statuses), (method, path)
            if operation["security"]:
                assert 401 in statuses, (method, path)
    send = document["paths"]["/api/sessions/{sessionId}/send"]["post"]["responses"]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(send["200"]["headers"])
    assert "Retry-After" in send["429"]["headers"]


def test_the_send_at_example_is_a_time_a_send_takes(client, account, shop, runtime):
    """The document's example `sendAt` stays ahead, within the year: sent as it is, it schedules."""
    document = client.get("/api/openapi.json").get_json()
    bodies = [op["requestBody"] for item in document["paths"].values() for op in item.values() if "requestBody" in op]
    examples = set()

    def walk(node, seen=()):
        if isinstance(node, dict):
            if "$ref" in node and node["$ref"] not in seen:
                name = node["$ref"].rsplit("/", 1)[1]
                walk(document["components"]["schemas"][name], (*seen, node["$ref"]))
            send_at = node.get("properties", {}).get("sendAt")
            if send_at:
                examples.update(send_at.get("examples", []))
            for value in node.values():
                walk(value, seen)
        elif isinstance(node, list):
            for value in node:
                walk(value, seen)

    walk(bodies)
    assert len(examples) == 1, examples
    [example] = examples
    assert datetime.now(UTC) < datetime.fromisoformat(example) < datetime.now(UTC) + timedelta(days=366)
    body = {"to": "919876543210", "message": "Later", "sendAt": example}
    response = client.post(f"/api/sessions/{shop}/send", json=body, headers=account.headers)
    assert (response.status_code, response.get_json()["status"]) == (202, "scheduled")


def test_the_document_is_served_with_this_server_as_its_server(client):
    response = client.get("/api/openapi.json", base_url="https://wa.example.com")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json()["servers"] == [{"url": "https://wa.example.com"}]
    assert response.get_json()["openapi"] == "3.1.0"


def test_the_docs_page_loads_only_vendored_scripts_under_the_csp(client):
    response = client.get("/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and all(re.search(r'src="/static/', attributes) for attributes in scripts)
    assert "/static/vendor/redoc-2.5.4.standalone.js" in page
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    with client.get("/static/vendor/redoc.LICENSE") as license_file:
        assert "MIT" in license_file.get_data(as_text=True)


def test_the_account_page_links_to_the_reference(client, account):
    page = DashboardUser(client, account).client.get("/account").get_data(as_text=True)
    assert 'href="/docs"' in page and 'href="/api/openapi.json"' in page


@pytest.mark.browser
@pytest.mark.live_server
def test_the_docs_page_renders_in_a_browser_under_the_csp(tmp_path):
    with embedded_server(tmp_path) as base_url, chromium() as browser:
        page = browser.new_page()
        problems: list[str] = []
        elsewhere: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("request", lambda request: None if request.url.startswith(base_url) else elsewhere.append(request.url))
        page.goto(f"{base_url}/docs")
        page.get_by_role("heading", name="Send a message").first.wait_for(timeout=15000)
        page.get_by_text("API docs by Redocly").wait_for()  # the sidebar, drawn to its end
        assert problems == []
        assert [url for url in elsewhere if not url.startswith(("data:", "blob:"))] == []
