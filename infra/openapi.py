"""The OpenAPI 3.1 document of an app's typed routes, generated from their msgspec models.

Request bodies, responses and parameters come from the very types the server decodes with
(``infra.http_api.Route``), through msgspec's JSON Schema generation (JSON Schema 2020-12, the
dialect of OpenAPI 3.1), so the document cannot drift from the handlers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from infra.http_api import ROUTES, ErrorBody, Route, add_routes, respond

_REF = "#/components/schemas/{name}"
_ERRORS = {
    400: "malformed request",
    401: "missing, invalid or expired bearer token",
    403: "the token's role, merchant or store may not do this",
    404: "not found",
    409: "refused by the rules; `reason` is a stable word",
    413: "request body too large",
    422: "bad input; `field` names it",
    503: "a backing store is unavailable; retry shortly",
}


def _parameters(route: Route, schemas: dict[type, Any],
                inline: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in re.findall(r"{([^}:]+)", route.path):
        params.append({"name": name, "in": "path", "required": True,
                       "schema": inline[route.path_params.get(name, str)]})
    if route.query is not None:
        for info in msgspec.structs.fields(route.query):
            params.append({"name": info.encode_name, "in": "query", "required": info.required,
                           "schema": inline[info.type]})
    for name, kind in route.headers.items():
        params.append({"name": name, "in": "header", "required": False,
                       "schema": inline[kind]})
    return params


def _content(route: Route, model: Any, schemas: dict[Any, Any]) -> dict[str, Any] | None:
    if model is None:
        if route.content_type == "application/json":
            return None
        return {route.content_type: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": schemas[model]}}


def build_document(
    routes: Sequence[Route], *, title: str, version: str, description: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    models: list[Any] = [ErrorBody]
    inline_types: list[Any] = []
    for route in routes:
        if route.body is not None:
            models.append(route.body)
        models += [m for m in route.responses.values() if m is not None]
        inline_types += [route.path_params.get(n, str)
                         for n in re.findall(r"{([^}:]+)", route.path)]
        if route.query is not None:
            inline_types += [f.type for f in msgspec.structs.fields(route.query)]
        inline_types += list(route.headers.values())
    unique = list(dict.fromkeys(models))
    refs, components = msgspec.json.schema_components(unique, ref_template=_REF)
    schemas = dict(zip(unique, refs, strict=True))
    inline_unique = list(dict.fromkeys(inline_types))
    inline_refs, inline_components = msgspec.json.schema_components(inline_unique,
                                                                    ref_template=_REF)
    components.update(inline_components)
    inline = dict(zip(inline_unique, inline_refs, strict=True))
    error = {"application/json": {"schema": schemas[ErrorBody]}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        responses: dict[str, Any] = {}
        for status, model in route.responses.items():
            entry: dict[str, Any] = {"description": "OK" if status < 300 else str(status)}
            content = _content(route, model, schemas)
            if content is not None:
                entry["content"] = content
            responses[str(status)] = entry
        for status, text in _ERRORS.items():
            if status in (401, 403) and not route.roles:
                continue
            responses.setdefault(str(status), {"description": text, "content": error})
        op: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "responses": responses,
        }
        if route.tags:
            op["tags"] = list(route.tags)
        if route.roles:
            op["description"] = f"Roles: {', '.join(route.roles)}."
            op["security"] = [{"bearer": []}]
        params = _parameters(route, schemas, inline)
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": schemas[route.body]}}}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


async def openapi_json(request: web.Request) -> web.Response:
    """This document (built once, on first request, after every package has mounted)."""
    info = request.app[_INFO]
    if "document" not in info:
        routes: list[Route] = request.app[ROUTES]
        info["document"] = build_document(routes, **info["about"])
    return respond(info["document"])


_INFO = web.AppKey("openapi_info", dict)


def add_openapi(app: web.Application, *, title: str, version: str, description: str) -> None:
    """Serve ``/v1/openapi.json`` for every typed route mounted on ``app``."""
    app[_INFO] = {"about": {"title": title, "version": version, "description": description}}
    add_routes(app, [Route("GET", "/v1/openapi.json", openapi_json,
                           "This OpenAPI 3.1 document", tags=("meta",))])
