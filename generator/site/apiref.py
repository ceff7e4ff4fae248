"""The API reference page's model, read from the OpenAPI spec kept in the repo (spec/openapi.json).

Every operation, parameter, request body, response code, response header and schema of the spec
appears; ``$ref`` s are resolved to the names they point at. Markdown descriptions are rendered
with raw HTML disabled, so the spec cannot inject markup into the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

SPEC_PATH = Path(__file__).resolve().parents[2] / "spec" / "openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")
AUTH_NAMES = {
    "ApiKeyAuth": "API key (X-API-Key header)",
    "BearerAuth": "API key (Authorization: Bearer)",
    "CookieAuth": "session cookie (sb-access-token)",
}
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str, demote: int = 2) -> Markup:
    """HTML of a spec description; its headings are demoted below the page's own."""
    tokens = _md.parse(text or "")
    for t in tokens:
        if t.type in ("heading_open", "heading_close"):
            t.tag = f"h{min(6, int(t.tag[1]) + demote)}"
    return Markup(_md.renderer.render(tokens, _md.options, {}))


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    where: str  # query, path, header, cookie, body, or "" for schema properties
    type: str
    required: bool
    description: str


@dataclass(frozen=True, slots=True)
class Reply:
    code: str
    description: str
    media: list[tuple[str, str]]  # (content type, schema text)
    headers: list[Field]


@dataclass(frozen=True, slots=True)
class Operation:
    op_id: str
    method: str
    path: str
    tag: str
    summary: str
    description: str
    auth: list[str]
    params: list[Field]
    body: list[tuple[str, list[Field]]]  # (content type, fields)
    body_required: bool
    replies: list[Reply]


def load_spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        parts = node["$ref"].removeprefix("#/").split("/")
        target: Any = spec
        for part in parts:
            target = target[part]
        node = target
    return node


def type_text(schema: dict[str, Any]) -> str:
    """A one-line description of a schema: type, format, enum, bounds and default."""
    if "$ref" in schema:
        return ref_name(schema["$ref"])
    if "allOf" in schema:
        return " + ".join(type_text(s) for s in schema["allOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        kind = f"array of {type_text(schema.get('items', {}))}"
    elif "format" in schema:
        kind = f"{kind} ({schema['format']})"
    notes = []
    if "enum" in schema:
        notes.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    for word, key in (
        ("min", "minimum"),
        ("max", "maximum"),
        ("min length", "minLength"),
        ("max length", "maxLength"),
        ("pattern", "pattern"),
        ("default", "default"),
    ):
        if key in schema:
            value = json.dumps(schema[key]) if isinstance(schema[key], bool) else schema[key]
            notes.append(f"{word} {value}")
    if schema.get("nullable"):
        notes.append("nullable")
    return kind + (f"; {'; '.join(notes)}" if notes else "")


def properties(spec: dict[str, Any], schema: dict[str, Any]) -> list[Field]:
    """The top-level properties of an object schema (``allOf`` parts merged)."""
    schema = resolve(spec, schema)
    if "allOf" in schema:
        return [f for part in schema["allOf"] for f in properties(spec, part)]
    required = set(schema.get("required", ()))
    return [
        Field(name, "", type_text(s), name in required, s.get("description", ""))
        for name, s in schema.get("properties", {}).items()
    ]


def _params(spec: dict[str, Any], raw: Iterable[dict[str, Any]]) -> list[Field]:
    out = []
    for p in (resolve(spec, p) for p in raw):
        text = p.get("description", "")
        if "example" in p:
            text += f" Example: {p['example']}"
        out.append(
            Field(
                p["name"],
                p["in"],
                type_text(p.get("schema", {})),
                bool(p.get("required")),
                text.strip(),
            )
        )
    return out


def _reply(spec: dict[str, Any], code: str, node: dict[str, Any]) -> Reply:
    named = ref_name(node["$ref"]) if "$ref" in node else ""
    node = resolve(spec, node)
    media = [
        (ctype, type_text(body.get("schema", {})))
        for ctype, body in node.get("content", {}).items()
    ]
    headers = [
        Field(name, "header", type_text(h.get("schema", {})), False, h.get("description", ""))
        for name, h in node.get("headers", {}).items()
    ]
    description = node.get("description", "") + (f" ({named})" if named else "")
    return Reply(code, description, media, headers)


def _operation(spec: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> Operation:
    body = op.get("requestBody", {})
    auth = [AUTH_NAMES.get(name, name) for req in op.get("security", []) for name in req]
    return Operation(
        op_id=op.get("operationId", f"{method}{path}"),
        method=method.upper(),
        path=path,
        tag=(op.get("tags") or ["Other"])[0],
        summary=op.get("summary", ""),
        description=op.get("description", ""),
        auth=auth,
        params=_params(spec, op.get("parameters", [])),
        body=[
            (ctype, properties(spec, c.get("schema", {})))
            for ctype, c in body.get("content", {}).items()
        ],
        body_required=bool(body.get("required")),
        replies=[_reply(spec, code, r) for code, r in sorted(op.get("responses", {}).items())],
    )


def operations(spec: dict[str, Any]) -> list[Operation]:
    """Every operation of the spec, in the order of its tags, then its paths."""
    ops = [
        _operation(spec, path, m, item[m])
        for path, item in spec["paths"].items()
        for m in METHODS
        if m in item
    ]
    order = {t["name"]: i for i, t in enumerate(spec.get("tags", []))}
    return sorted(ops, key=lambda o: order.get(o.tag, len(order)))


def schemas(spec: dict[str, Any]) -> list[tuple[str, str, list[Field]]]:
    """(name, description, properties) of every component schema."""
    return [
        (name, s.get("description", ""), properties(spec, s))
        for name, s in spec.get("components", {}).get("schemas", {}).items()
    ]
