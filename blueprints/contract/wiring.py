"""The contract wiring: what each route takes and answers, declared once as pydantic schemas.

A `Contract` is one API dialect's (the native WAMessenger one is blueprints/contract/native.py). Its
routes declare their answers with `@contract.operation(...)` and what they take with
`@contract.request(...)`; the same declarations

- validate each request (path, headers, query, JSON body) before the view runs, and hand
  the view the checked values (`body=`, `query=`, `headers=`);
- shape each JSON answer: the view returns a dict, and what goes out is that dict checked
  against the answer's schema for its status (a key the schema leaves out is an error,
  so the document can never say less than the server sends);
- make the dialect's OpenAPI 3.1 document (`contract.document(app)`), the schemas' own
  JSON Schema (pydantic's) under `components/schemas`.

A request that does not fit is refused with the dialect's error: the contract's
`ErrorTable` turns pydantic's first complaint into a code, the field at fault and a
message, which it raises as `services.errors.ValidationError` (400). Each dialect has its
own table, error schema and document, so a new dialect is a `Contract` of its own whose
blueprint renders `ApiError`s in its envelope.

What is not shape stays with the services: whether a phone number exists for its country,
what media really is, whether a URL reaches a private address, idempotency, ownership.

Request bodies are read here too (`request_json`): JSON only, an object, nested at most
`MAX_JSON_DEPTH` levels, every string valid Unicode.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, jsonify, request
from pydantic import TypeAdapter
from pydantic import ValidationError as SchemaError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import ErrorDetails

from blueprints.contract.body import body_spooled, body_streams
from blueprints.contract.spool import InvalidJson
from services.errors import ValidationError
from services.messaging.inline import InlineMedia

Schema = dict[str, Any]
JSON = "application/json"
# The deepest JSON body any route takes is 3 levels ({"contacts": [{"number": ...}]}); 32
# leaves room, and keeps a hostile body from exhausting the parser's stack.
MAX_JSON_DEPTH = 32


# -- reading the body -----------------------------------------------------------------------


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def request_json(*, required: bool = True) -> dict | None:
    """The request's JSON object (whatever its Content-Type); None when there is none and
    it is not `required`. 400 for anything else, in the documented shape.

    A large body is read as it streams in, its inline media decoded to files on the way
    (blueprints/contract/body.py): what is parsed here is the rest of it, a stand-in string
    in each such data URL's place (by which services/messaging/media.py finds the file).
    """
    try:
        raw, inline = body_spooled() if body_streams() else (request.get_data(cache=True), {})
    except InvalidJson:
        raise _not_json() from None
    if not raw:
        if required:
            raise ValidationError("A JSON request body is required", code="MISSING_BODY")
        return None
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:  # deeper than the parser goes, so deeper than MAX_JSON_DEPTH
        raise _too_deep() from None
    except ValueError:
        raise _not_json() from None
    _plain_json(body, inline)
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object", code="INVALID_BODY")
    return body


def _not_json() -> ValidationError:
    return ValidationError("The request body is not valid JSON", error="Invalid JSON", code="INVALID_JSON")


def _plain_json(body: object, inline: Mapping[str, InlineMedia]) -> None:
    """400 for a body nested deeper than MAX_JSON_DEPTH, or with a string that is not valid
    Unicode (an unpaired surrogate escape such as "\\ud800", which nothing can store), also
    in the part of a data URL that was decoded to a file (`inline`)."""
    pending: list[tuple[object, tuple, int]] = [(body, (), 1)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _unicode(key, path)
                pending.append((item, (*path, key), depth + 1))
        elif isinstance(value, str):
            _unicode(value, path)
            if value in inline and inline[value].unpaired_surrogate:
                raise _not_unicode(path)


def _too_deep() -> ValidationError:
    return ValidationError(
        f"The request body is nested more than {MAX_JSON_DEPTH} levels deep", error="Invalid JSON", code="INVALID_JSON"
    )


def _unicode(text: str, path: tuple) -> None:
    if text.isascii():
        return
    try:
        text.encode()
    except UnicodeEncodeError:
        raise _not_unicode(path) from None


def _not_unicode(path: tuple) -> ValidationError:
    where = _dotted(path)
    return ValidationError(
        "The request body has a string that is not valid Unicode (an unpaired surrogate escape such as "
        + "\\ud800)"
        + (f" in '{where}'" if where else ""),
        error="Invalid text",
        code="INVALID_UNICODE",
        details={"field": where} if where else None,
    )


def _dotted(path: Iterable) -> str:
    return ".".join(str(part) for part in path if not isinstance(part, int))


# -- validation failures -> the dialect's codes ---------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A validation failure's code: for a failure at `fields` (dotted, `*` wildcards; any
    when empty) of pydantic error `types` (any when empty), in `schemas` (any when empty),
    `within` one of these branches of a union (its tags; any when empty).

    `message` replaces pydantic's (it may use {field}, {detail}, {branch} and the error's
    context); `field` replaces the dotted path as the field the answer names.
    """

    code: str
    fields: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    schemas: tuple[object, ...] = ()
    within: tuple[str, ...] = ()
    message: str | None = None
    field: str | None = None

    def matches(self, schema: object, where: str, kind: str, branches: list[str]) -> bool:
        return (
            (not self.schemas or schema in self.schemas)
            and (not self.types or kind in self.types)
            and (not self.fields or any(fnmatch.fnmatchcase(where, pattern) for pattern in self.fields))
            and (not self.within or any(branch in self.within for branch in branches))
        )


@dataclass(frozen=True)
class ErrorTable:
    """The first matching rule names a failure's code; `default` when none does."""

    rules: tuple[Rule, ...]
    default: str = "INVALID_FIELD"

    def failure(self, schema: object, error: ErrorDetails, data: object, part: str) -> ValidationError:
        where, branches = _field_path(error, data)
        if part in ("query", "headers", "path") and not where:
            where = str(error["loc"][-1]) if error["loc"] else ""
        kind = error["type"]
        rule = next((rule for rule in self.rules if rule.matches(schema, where, kind, branches)), None)
        name = (rule.field if rule and rule.field else where) or None
        detail = _detail(error, kind)
        if rule and rule.message:
            context = {"field": name, "detail": detail, "branch": branches[0] if branches else ""}
            message = rule.message.format(**(error.get("ctx") or {}) | context)
        else:
            message = f"'{name}' {detail}" if name else detail[0].upper() + detail[1:]
        return ValidationError(
            message, code=rule.code if rule else self.default, details={"field": name} if name else None
        )


def _field_path(error: ErrorDetails, data: object) -> tuple[str, list[str]]:
    """The dotted field an error is about, read off its location in the data, and the union
    branches on the way: parts that name no key of the data (list positions are left out)."""
    parts: list[str] = []
    branches: list[str] = []
    loc = error["loc"]
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(part, int) and isinstance(data, list):
            data = data[part] if part < len(data) else None
        elif isinstance(data, dict) and part in data:
            parts.append(str(part))
            data = data[part]
        elif last and isinstance(part, str) and error["type"] == "missing":
            parts.append(part)
        elif isinstance(part, str):
            branches.append(part)
    return ".".join(parts), branches


def _detail(error: ErrorDetails, kind: str) -> str:
    """What is wrong, as the end of a sentence that starts with the field."""
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this request"
    message = error["msg"]
    return "is invalid: " + message[0].lower() + message[1:]


# -- declarations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """A response header: what it says, and its JSON Schema type."""

    description: str
    schema: type = int


# The rate-limit headers a dialect answers with (the native one words the limit its own way).
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": Header("Requests allowed per window"),
    "X-RateLimit-Remaining": Header("What is left of it"),
    "X-RateLimit-Reset": Header("When it resets (Unix seconds)"),
    "Retry-After": Header("Seconds to wait before trying again"),
    "X-Request-ID": Header("This request's id", str),
}


@dataclass(frozen=True)
class Answer:
    """One status an operation answers with: its description and body schema (None: no
    JSON body to shape, e.g. a file or an event stream), and its headers."""

    status: int
    description: str
    schema: object = None
    headers: tuple[str, ...] = ()
    media_type: str = JSON


@dataclass
class Operation:
    operation_id: str
    tag: str
    answers: dict[int, Answer]
    errors: tuple[int, ...]
    security: list | None
    view: Callable | None = None
    body: object = None
    body_required: bool = True
    example: object = None
    query: object = None
    headers: object = None
    path: dict[str, object] = field(default_factory=dict)


def _adapter(schema: object) -> TypeAdapter:
    """pydantic's validator and serializer of `schema`, built once (building one is slow)."""
    held = _ADAPTERS.get(id(schema))
    if held is None:
        # The schema is kept with its adapter, so its id can never be another's.
        held = _ADAPTERS[id(schema)] = (schema, TypeAdapter(schema))
    return held[1]


_ADAPTERS: dict[int, tuple[object, TypeAdapter]] = {}


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema, without a title on every field (the name says it); answers
    (serialization) stay open to fields added later, as additions are allowed."""

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def typed_dict_schema(self, schema) -> Schema:
        generated = super().typed_dict_schema(schema)
        if self.mode == "serialization" and generated.get("additionalProperties") is False:
            del generated["additionalProperties"]
        return generated


@dataclass
class Contract:
    """One API dialect: its routes' declarations, error table and OpenAPI document."""

    name: str
    info: Schema
    tags: list[tuple[str, str]]
    errors: ErrorTable
    error_schema: object
    error_titles: dict[int, str]
    security_schemes: Schema
    security: list
    response_headers: dict[str, Header]
    # Headers every answer carries, and the ones answers with these statuses carry.
    every_answer: tuple[str, ...] = ()
    status_headers: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # Path parameters by Flask name: their description and schema (overridable per route).
    path_parameters: dict[str, tuple[str, object]] = field(default_factory=dict)
    # Error statuses any operation may answer, declared or not (503: the database or Redis is down).
    errors_everywhere: tuple[int, ...] = ()

    # -- decorators -------------------------------------------------------------------------

    def operation(
        self,
        operation_id: str,
        tag: str,
        *answers: Answer,
        errors: Iterable[int] = (),
        security: list | None = None,
    ) -> Callable:
        """Declare a route's answers (the view's docstring is its summary and description),
        and shape its JSON answers by them. Goes right under the route decorator."""
        operation = Operation(
            operation_id, tag, {answer.status: answer for answer in answers}, tuple(sorted(set(errors))), security
        )

        def decorate(view: Callable) -> Callable:
            declared = _operations(view)
            if self.name in declared:
                declared[self.name].__dict__.update(
                    {key: value for key, value in operation.__dict__.items() if key not in _REQUEST_PARTS}
                )
                operation_ = declared[self.name]
            else:
                operation_ = declared[self.name] = operation
            operation_.view = view

            @functools.wraps(view)
            def shaped(*args, **kwargs):
                return self._shape(operation_, view(*args, **kwargs))

            return shaped

        return decorate

    def request(
        self,
        *,
        body: object = None,
        required: bool = True,
        example: object = None,
        query: object = None,
        headers: object = None,
        path: Mapping[str, object] | None = None,
        max_bytes: str | None = None,
        forms: bool = False,
    ) -> Callable:
        """Declare and check what a route takes; the view gets `body=`, `query=`, `headers=`
        (dicts of what was sent, checked) and its path values checked. Goes under the
        authentication decorators, so an anonymous caller is told 401 before anything else.

        `required=False`: the body may be left out (the view gets {}). `max_bytes`: the
        config key of a larger body limit than MAX_CONTENT_LENGTH (sends with inline media).
        `forms`: a form post is for the view to read (`body` is then None).
        """

        def decorate(view: Callable) -> Callable:
            declared = _operations(view)
            operation = declared.setdefault(self.name, Operation("", "", {}, (), None))
            operation.body, operation.body_required, operation.example = body, required, example
            operation.query, operation.headers, operation.path = query, headers, dict(path or {})

            @functools.wraps(view)
            def checked(*args, **kwargs):
                for name, value in list(kwargs.items()):
                    schema = self.path_schema(operation, name)
                    # A value Flask's converter made (a UUID) is checked already.
                    if schema is not str and isinstance(value, str):
                        kwargs[name] = self.validate(schema, value, "path", _camel(name))
                if headers is not None:
                    kwargs["headers"] = self.validate(headers, _headers_sent(headers), "headers")
                if query is not None:
                    sent = {key: value for key, value in request.args.items() if value != ""}
                    kwargs["query"] = self.validate(query, sent, "query")
                if body is not None:
                    if max_bytes:
                        request.max_content_length = current_app.config[max_bytes]
                    if forms and request.form:
                        kwargs["body"] = None
                    else:
                        sent = request_json(required=required)
                        kwargs["body"] = {} if sent is None else self.validate(body, sent, "body")
                return view(*args, **kwargs)

            return checked

        return decorate

    def path_schema(self, operation: Operation, name: str) -> object:
        """The schema of a path parameter (by its Flask name): the route's, else the dialect's."""
        return operation.path.get(name, self.path_parameters.get(name, ("", str))[1])

    def validate(self, schema: object, data: object, part: str = "body", name: str | None = None) -> Any:
        """`data` checked against `schema` (JSON types, strictly: "12" is not a number); the
        dialect's 400 for the first thing wrong."""
        strict = part == "body"
        try:
            return _adapter(schema).validate_python(data, strict=strict)
        except SchemaError as exc:
            error = exc.errors(include_url=False)[0]
            if name is not None:
                error = {**error, "loc": (name, *error["loc"])}
                data = {name: data}
            raise self.errors.failure(schema, error, data, part) from None

    def _shape(self, operation: Operation, result: object) -> object:
        body, status, headers = _unpack(result)
        if not isinstance(body, dict | list):  # a Response, a file, a page
            return result
        answer = operation.answers.get(status)
        if answer is None:
            raise RuntimeError(f"{operation.operation_id} answered {status}, which its contract does not declare")
        if answer.schema is not None:
            body = _adapter(answer.schema).validate_python(body, strict=True)
        return jsonify(body), status, headers

    # -- the document -----------------------------------------------------------------------

    def document(self, app: Flask, server_url: str | None = None) -> Schema:
        """The dialect's OpenAPI 3.1 document, with `server_url` as its server."""
        built = app.extensions.setdefault("contract documents", {})
        if self.name not in built:
            built[self.name] = self._build(app)
        document = copy.deepcopy(built[self.name])
        if server_url:
            document["servers"] = [{"url": server_url.rstrip("/")}]
        return document

    def operations(self, app: Flask) -> Iterable[tuple[str, str, Operation]]:
        """(OpenAPI path, method, operation) for each of the app's routes in this dialect."""
        for rule in app.url_map.iter_rules():
            operation = _operations(app.view_functions[rule.endpoint]).get(self.name)
            if operation is None or not operation.operation_id:
                continue
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield openapi_path(rule.rule), method.lower(), operation

    def _build(self, app: Flask) -> Schema:
        found = list(self.operations(app))
        inputs: list[tuple[Any, str, TypeAdapter]] = [
            (("error", "serialization"), "serialization", _adapter(self.error_schema))
        ]
        for path, _, operation in found:
            path_schemas = [self.path_schema(operation, _snake(name)) for name in _path_names(path)]
            for part in (operation.body, operation.query, operation.headers, *path_schemas):
                if part is not None:
                    inputs.append(((id(part), "validation"), "validation", _adapter(part)))
            for answer in operation.answers.values():
                if answer.schema is not None:
                    inputs.append(((id(answer.schema), "serialization"), "serialization", _adapter(answer.schema)))
        unique = list({key: (key, mode, adapter) for key, mode, adapter in inputs}.values())
        schemas, definitions = TypeAdapter.json_schemas(
            unique, ref_template="#/components/schemas/{model}", schema_generator=_Generator
        )
        components = definitions.get("$defs", {})

        def schema_of(part: object, mode: str) -> Schema:
            return copy.deepcopy(schemas[((id(part), mode), mode)])

        def resolved(schema: Schema) -> Schema:
            while "$ref" in schema:
                schema = components[schema["$ref"].rsplit("/", 1)[-1]]
            return schema

        paths: dict[str, Schema] = {}
        for path, method, operation in found:
            summary, _, description = (operation.view.__doc__ or "").strip().partition("\n")
            entry: Schema = {"tags": [operation.tag], "summary": summary.strip(), "operationId": operation.operation_id}
            if description.strip():
                entry["description"] = re.sub(r"\s*\n\s*", " ", description.strip())
            parameters = [self._path_parameter(name, operation, schema_of) for name in _path_names(path)]
            for part, where in ((operation.headers, "header"), (operation.query, "query")):
                if part is not None:
                    parameters += _parameters(resolved(schema_of(part, "validation")), where)
            if parameters:
                entry["parameters"] = parameters
            if operation.body is not None:
                media: Schema = {"schema": schema_of(operation.body, "validation")}
                if operation.example is not None:
                    media["example"] = operation.example
                entry["requestBody"] = {"required": operation.body_required, "content": {JSON: media}}
            responses: Schema = {}
            for status, answer in sorted(operation.answers.items()):
                content_schema = schema_of(answer.schema, "serialization") if answer.schema is not None else {}
                responses[str(status)] = {
                    "description": answer.description,
                    "headers": self._header_refs((*self.every_answer, *answer.headers)),
                    "content": {answer.media_type: {"schema": content_schema}},
                }
            for status in (*operation.errors, *self.errors_everywhere):
                responses.setdefault(str(status), {"$ref": f"#/components/responses/E{status}"})
            entry["responses"] = responses
            entry["security"] = self.security if operation.security is None else operation.security
            paths.setdefault(path, {})[method] = entry

        error_ref = schemas[(("error", "serialization"), "serialization")]
        return {
            "openapi": "3.1.0",
            "info": self.info,
            "tags": [{"name": name, "description": description} for name, description in self.tags],
            "paths": paths,
            "components": {
                "schemas": components,
                "responses": {
                    f"E{status}": {
                        "description": title,
                        "headers": self._header_refs((*self.every_answer, *self.status_headers.get(status, ()))),
                        "content": {JSON: {"schema": error_ref}},
                    }
                    for status, title in self.error_titles.items()
                },
                "headers": {
                    name: {"description": header.description, "schema": TypeAdapter(header.schema).json_schema()}
                    for name, header in self.response_headers.items()
                },
                "securitySchemes": self.security_schemes,
            },
        }

    def _path_parameter(self, name: str, operation: Operation, schema_of: Callable) -> Schema:
        flask_name = _snake(name)
        description = self.path_parameters.get(flask_name, ("", str))[0]
        schema = self.path_schema(operation, flask_name)
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": schema_of(schema, "validation"),
        }

    def _header_refs(self, names: Iterable[str]) -> Schema:
        return {name: {"$ref": f"#/components/headers/{name}"} for name in dict.fromkeys(names)}


_REQUEST_PARTS = {"body", "body_required", "example", "query", "headers", "path"}


def _operations(view: Callable) -> dict[str, Operation]:
    """The operations a view is declared as, by dialect (shared by every wrapper of it)."""
    if "contract_operations" not in view.__dict__:
        view.contract_operations = {}
    return view.contract_operations


def _unpack(result: object) -> tuple[object, int, object]:
    if isinstance(result, tuple):
        body, status, *rest = (*result, None) if len(result) == 2 else result
        return body, status, rest[0] if rest else None
    return result, 200, None


def _headers_sent(schema: object) -> dict[str, str]:
    return {name: request.headers[name] for name in schema.__annotations__ if name in request.headers}


def _parameters(schema: Schema, where: str) -> list[Schema]:
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema.get("properties", {}).items():
        property_schema = dict(property_schema)
        description = property_schema.pop("description", "")
        if where == "query" and name not in required:
            # An empty value (`?status=`) is the same as leaving the parameter out.
            property_schema = {"anyOf": [property_schema, {"const": ""}]}
        parameters.append(
            {
                "name": name,
                "in": where,
                "required": name in required,
                "description": description,
                "schema": property_schema,
            }
        )
    return parameters


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: /api/sessions/<session_id> -> /api/sessions/{sessionId}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda match: "{" + _camel(match.group(1)) + "}", rule)


def _path_names(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda match: "_" + match.group(1).lower(), name)
