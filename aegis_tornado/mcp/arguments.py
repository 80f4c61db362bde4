"""Check tool arguments against the tool's input schema before the tool runs.

Only the JSON Schema keywords our tools use are understood (type, properties, required,
additionalProperties, enum, minimum, maximum, minLength, maxLength, items, maxItems, default);
a schema using anything else is refused when the tool is registered, so no constraint is
silently ignored.
Messages name the argument and say what is expected, for a model to correct its call.
"""

from __future__ import annotations

import math
from typing import Any

KNOWN_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "items",
    "maxItems",
    "default",
    "description",
    "title",
    "examples",
}

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


class ArgumentError(ValueError):
    pass


def check_schema(schema: dict[str, Any], where: str = "inputSchema") -> None:
    """Refuse schemas with keywords this validator would not enforce."""
    unknown = set(schema) - KNOWN_KEYWORDS
    if unknown:
        raise ValueError(f"{where}: unsupported keyword(s) {sorted(unknown)}")
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, f"{where}.properties.{name}")
    if isinstance(schema.get("items"), dict):
        check_schema(schema["items"], f"{where}.items")


_PY_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}


def _is_type(value: Any, expected: str) -> bool:
    if isinstance(value, bool):  # bool is an int subclass in Python, never in JSON
        return expected == "boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return False  # NaN passes every bound check; JSON has neither it nor infinity
    if expected == "integer":
        return isinstance(value, int) or (
            isinstance(value, float) and value.is_integer() and abs(value) < 2**53
        )
    if expected == "number":
        return isinstance(value, (int, float))
    return isinstance(value, _PY_TYPES.get(expected, ()))


def validate_arguments(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The arguments with defaults filled in and integral floats made ints; ArgumentError if bad."""
    return _validate(arguments, schema, "arguments")


def _describe(path: str) -> str:
    return "arguments" if path == "arguments" else f"argument '{path.removeprefix('arguments.')}'"


def _validate(value: Any, schema: dict[str, Any], path: str) -> Any:
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, t) for t in types):
            wanted = " or ".join(_TYPE_NAMES.get(t) or str(t) for t in types)
            raise ArgumentError(f"{_describe(path)} must be {wanted}")
        if "integer" in types and isinstance(value, float):
            value = int(value)
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(c) for c in schema["enum"])
        raise ArgumentError(f"{_describe(path)} must be one of {choices}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (
                f"between {low} and {high}"
                if low is not None and high is not None
                else f"at least {low}"
                if low is not None
                else f"at most {high}"
            )
            raise ArgumentError(f"{_describe(path)} must be {bounds}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise ArgumentError(
                f"{_describe(path)} must not be empty"
                if schema["minLength"] == 1
                else f"{_describe(path)} is too short"
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ArgumentError(
                f"{_describe(path)} is too long (at most {schema['maxLength']} characters)"
            )
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ArgumentError(f"{_describe(path)} has more than {schema['maxItems']} items")
        value = [_validate(item, schema["items"], f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict) and ("properties" in schema or "required" in schema):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise ArgumentError(f"missing required argument '{name}'")
        if schema.get("additionalProperties") is False:
            unknown = sorted(set(value) - set(properties))
            if unknown:
                allowed = ", ".join(properties) or "none"
                raise ArgumentError(
                    f"unknown argument(s) {', '.join(repr(u[:40]) for u in unknown[:5])}; "
                    f"allowed: {allowed}"
                )
        checked = dict(value)
        for name, sub in properties.items():
            if name in value and not (value[name] is None and "default" in sub):
                checked[name] = _validate(value[name], sub, f"{path}.{name}")
            elif "default" in sub:
                checked[name] = sub["default"]
        value = checked
    return value
