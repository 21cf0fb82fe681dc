"""``/openapi.json`` (OpenAPI 3.0, built from the endpoint declarations) and ``/docs``.

The document is generated from :data:`api._routing.ENDPOINTS`, so it lists
exactly the routes the app serves, with their auth, and the JSON Schema of the
very pydantic models the requests are validated against (path, query, header
parameters and bodies): what the document says is what the app accepts.
``/docs`` is a self-contained page (no CDN: daemons often run where browsers
cannot fetch one) that renders the document.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Response

from ._routing import ENDPOINTS, Auth, endpoint, path_schema
from ._validate import MAX_DEPTH, has_required

bp = Blueprint("openapi", __name__)

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
}

REF_TEMPLATE = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], components: dict) -> dict:
    """``model``'s JSON Schema for OpenAPI 3.0: nested models moved to ``components``, and the
    ``default: null`` of fields that may be left out dropped (null itself is not accepted)."""
    schema = _openapi_3_0(model.model_json_schema(ref_template=REF_TEMPLATE))
    components.update(schema.pop("$defs", {}))
    return schema


def _openapi_3_0(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _openapi_3_0(v) for k, v in node.items() 
                if not (k == "default" and v is None) and not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_openapi_3_0(v) for v in node]
    return node


def _parameters(model: type[BaseModel] | None, location: str, components: dict) -> list[dict]:
    if model is None:
        return []
    schema = _schema(model, components)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", "")
        out.append({"name": name, "in": location, "required": name in required, "schema": prop,
                    "description": description})
    return out


def document() -> dict:
    """The OpenAPI document of every declared endpoint."""
    paths: dict = {}
    components: dict = {"Error": ERROR_SCHEMA}
    for e in ENDPOINTS:
        if e.path in ("/openapi.json", "/docs", "/"):
            continue
        parameters = [{"name": n, "in": "path", "required": True, "schema": _openapi_3_0(path_schema(n))}
                      for n in e.path_params]
        parameters += _parameters(e.query, "query", components) + _parameters(e.headers, "header", components)
        ok = "204" if e.method == "DELETE" else str(e.status)
        responses: dict = {ok: {"description": "success"}}
        if ok != "204":
            responses[ok]["content"] = {kind: {"schema": {}} for kind in e.produces}
        responses["default"] = {"description": "error",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        operation: dict = {"operationId": f"{e.tag}_{e.method.lower()}_{len(paths)}", "summary": e.summary,
                           "tags": [e.tag], "parameters": parameters, "responses": responses}
        if e.auth is not Auth.NONE:
            operation["security"] = [{"bearer": []}]
            operation["description"] = {
                Auth.ADMIN: "Admin token only.",
                Auth.TENANT: "Admin token, or an agent JWT of this tenant.",
                Auth.TENANT_ADMIN: "Admin token, or a JWT with role admin of this tenant.",
            }[e.auth]
        if e.body is not None:
            operation["requestBody"] = {"required": has_required(e.body),
                                        "content": {"application/json": {"schema": _schema(e.body, components)}}}
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "zapvisor", "version": version("zapvisor"),
                 "description": "Supervised WhatsApp sessions for multi-tenant helpdesks. Every request is "
                                "validated against the schemas below before anything is written: unknown "
                                f"fields, nulls for typed fields, mistyped values, lone surrogates and NULs "
                                f"in text, and JSON nested deeper than {MAX_DEPTH} levels answer 400 naming "
                                "the field."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@endpoint(bp, "GET", "/openapi.json", summary="This API's OpenAPI document", auth=Auth.NONE)
async def openapi(who: None):
    return document()


DOCS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>zapvisor API</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}code{background:#eee;padding:0 .3em}
.op{border-left:4px solid #888;margin:.6em 0;padding:.2em .8em}.get{border-color:#2a7}.post{border-color:#27c}
.delete{border-color:#c33}pre{background:#f6f6f6;padding:.5em;overflow:auto}</style></head>
<body><h1>zapvisor API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a>; the websocket
<code>/ws</code> (ops, rooms, frames): <a href="/asyncapi.json">/asyncapi.json</a>.
Send <code>Authorization: Bearer &lt;admin token or agent JWT&gt;</code>.</p><div id="ops"></div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const ops = document.getElementById('ops');
  for (const [path, methods] of Object.entries(doc.paths)) for (const [m, op] of Object.entries(methods)) {
    const div = document.createElement('div'); div.className = 'op ' + m;
    const body = op.requestBody ? '<pre>' + JSON.stringify(op.requestBody.content['application/json'].schema, null, 1) + '</pre>' : '';
    div.innerHTML = '<b>' + m.toUpperCase() + '</b> <code>' + path + '</code> ' + op.summary +
      ' <i>' + (op.description || '') + '</i>' + body;
    ops.appendChild(div);
  }
});
</script></body></html>"""


@endpoint(bp, "GET", "/docs", summary="Human-readable API documentation", auth=Auth.NONE, produces=("text/html",))
async def docs(who: None):
    return Response(DOCS_PAGE, mimetype="text/html")
