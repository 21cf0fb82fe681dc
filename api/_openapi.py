"""``/openapi.json`` (OpenAPI 3.0, built from the endpoint declarations) and ``/docs``.

The document is generated from :data:`api._routing.ENDPOINTS`, so it lists
exactly the routes the app serves, with their auth, path and query parameters
and request bodies. ``/docs`` is a self-contained page (no CDN: daemons often
run where browsers cannot fetch one) that renders the document.
"""

from __future__ import annotations

from importlib.metadata import version

from quart import Blueprint, Response

from ._routing import ENDPOINTS, Auth, endpoint

bp = Blueprint("openapi", __name__)

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
}


def document() -> dict:
    """The OpenAPI document of every declared endpoint."""
    paths: dict = {}
    for e in ENDPOINTS:
        if e.path in ("/openapi.json", "/docs", "/"):
            continue
        parameters = [{"name": n, "in": "path", "required": True, "schema": s} for n, s in e.path_params.items()]
        parameters += [{"name": p.name, "in": p.location, "required": p.required, "schema": p.schema,
                        "description": p.description} for p in e.query]
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
            operation["requestBody"] = {"required": "required" in e.body,
                                        "content": {"application/json": {"schema": e.body}}}
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "zapvisor", "version": version("zapvisor"),
                 "description": "Supervised WhatsApp sessions for multi-tenant helpdesks."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@endpoint(bp, "GET", "/openapi.json", summary="This API's OpenAPI document", auth=Auth.NONE)
async def openapi(who: None):
    return document()


DOCS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>zapvisor API</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}code{background:#eee;padding:0 .3em}
.op{border-left:4px solid #888;margin:.6em 0;padding:.2em .8em}.get{border-color:#2a7}.post{border-color:#27c}
.delete{border-color:#c33}pre{background:#f6f6f6;padding:.5em;overflow:auto}</style></head>
<body><h1>zapvisor API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a>.
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
