"""Gitea 1.27's Swagger document as a test oracle: path templates, parameters, response schemas.

The spec is vendored beside this module: ``data/swagger.v1.json`` (Gitea 1.27.0; see its README).

Swagger 2.0 schemas are JSON Schema draft 4 plus extensions (``x-go-name`` ... are ignored). Two
adjustments make them usable as an oracle for *real* Gitea output, and they are deliberately narrow:

* Gitea's generator marks nothing nullable, yet Go pointers and nil slices serialise as ``null``.
  So a property may be ``null`` when it is an object reference, an array or a date-time, plus the
  few scalar pointers listed in ``SCALAR_NULLABLE``. Plain strings, integers and booleans may not.
* Every object is closed (``additionalProperties: false``) so a misspelt or invented field fails;
  ``EXTRA_FIELDS`` lists the fields real Gitea sends that the spec omits.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

SPEC_PATH = Path(__file__).resolve().parent / "data" / "swagger.v1.json"

SCALAR_NULLABLE = {
    ("ContentsResponse", "encoding"),
    ("ContentsResponse", "content"),
    ("ContentsResponse", "target"),
    ("ContentsResponse", "url"),
    ("ContentsResponse", "html_url"),
    ("ContentsResponse", "git_url"),
    ("ContentsResponse", "download_url"),
    ("ContentsResponse", "submodule_git_url"),
    ("ContentsResponse", "lfs_oid"),
    ("ContentsResponse", "lfs_size"),
    ("FileLinksResponse", "self"),
    ("FileLinksResponse", "git"),
    ("FileLinksResponse", "html"),
    ("PullRequest", "merge_commit_sha"),
}
EXTRA_FIELDS = {
    "User": {"username": {"type": "string"}},  # added by User.MarshalJSON for compatibility
    "APIError": {"errors": {"type": "array", "items": {"type": "string"}}},  # 1.24/1.25 404 bodies
}

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(_RFC3339.match(value))


@FORMATS.checks("email")
def _is_email(value: object) -> bool:
    # Organisations carry "" as their e-mail in real Gitea output.
    return not isinstance(value, str) or value == "" or ("@" in value and " " not in value)


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


@lru_cache(maxsize=1)
def strict_definitions() -> dict[str, Any]:
    definitions = copy.deepcopy(spec()["definitions"])
    for name, definition in definitions.items():
        props = definition.get("properties")
        if definition.get("type") != "object" or props is None:
            continue
        for prop_name, prop in list(props.items()):
            if (
                "$ref" in prop
                or prop.get("type") == "array"
                or prop.get("format") == "date-time"
                or (name, prop_name) in SCALAR_NULLABLE
            ):
                props[prop_name] = _nullable(prop)
        props.update(EXTRA_FIELDS.get(name, {}))
        definition["additionalProperties"] = False
    return definitions


def validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    root = {"definitions": strict_definitions(), "allOf": [schema]}
    return jsonschema.Draft4Validator(root, format_checker=FORMATS)


def definition_validator(name: str) -> jsonschema.Draft4Validator:
    return validator({"$ref": f"#/definitions/{name}"})


def _template_regex(template: str) -> re.Pattern[str]:
    out = ""
    for literal, param in re.findall(r"([^{]*)(?:\{([^}]+)\})?", template):
        out += re.escape(literal)
        if param:
            out += ".+" if param == "filepath" else "[^/]+"
    return re.compile(f"^{out}$")


@lru_cache(maxsize=1)
def _templates() -> list[tuple[str, re.Pattern[str]]]:
    return [(t, _template_regex(t)) for t in spec()["paths"]]


def match_template(api_path: str, method: str = "get") -> str | None:
    """The spec path template (with ``method``) that ``api_path`` (percent-encoded, relative to
    /api/v1) fits; the most specific one (most literal characters) when several fit."""
    hits = [
        t for t, rx in _templates() if rx.match(api_path) and method.lower() in spec()["paths"][t]
    ]
    if not hits:
        return None
    return max(hits, key=lambda t: len(re.sub(r"\{[^}]+\}", "", t)))


def operation(template: str, method: str = "get") -> dict[str, Any]:
    return spec()["paths"][template][method]


def query_params(template: str, method: str = "get") -> set[str]:
    return {
        p["name"]
        for p in operation(template, method).get("parameters", [])
        if p.get("in") == "query"
    }


def response(template: str, status: int = 200, method: str = "get") -> dict[str, Any]:
    resp = operation(template, method)["responses"][str(status)]
    if "$ref" in resp:
        resp = spec()["responses"][resp["$ref"].rsplit("/", 1)[1]]
    return resp


def response_validator(template: str, status: int = 200) -> jsonschema.Draft4Validator:
    schema = response(template, status).get("schema")
    assert schema is not None, f"the spec gives no body schema for GET {template} -> {status}"
    return validator(schema)


def errors_of(v: jsonschema.Draft4Validator, instance: Any, limit: int = 5) -> list[str]:
    out = []
    for error in v.iter_errors(instance):
        out.append(f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message[:200]}")
        if len(out) >= limit:
            break
    return out
