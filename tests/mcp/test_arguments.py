import pytest

from aegis_tornado.mcp.arguments import ArgumentError, check_schema, validate_arguments

SCHEMA = {
    "type": "object",
    "properties": {
        "owner": {"type": "string", "minLength": 1, "maxLength": 10},
        "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 30},
        "state": {"type": "string", "enum": ["open", "closed"]},
        "recursive": {"type": "boolean"},
        "labels": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["owner"],
    "additionalProperties": False,
}


def test_defaults_and_integral_floats():
    assert validate_arguments({"owner": "a"}, SCHEMA) == {"owner": "a", "limit": 30}
    assert validate_arguments({"owner": "a", "limit": 5.0}, SCHEMA)["limit"] == 5


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({}, "missing required argument 'owner'"),
        ({"owner": 1}, "argument 'owner' must be a string"),
        ({"owner": ""}, "argument 'owner' must not be empty"),
        ({"owner": "x" * 11}, "argument 'owner' is too long"),
        ({"owner": "a", "limit": 0}, "argument 'limit' must be between 1 and 50"),
        ({"owner": "a", "limit": True}, "argument 'limit' must be an integer"),
        ({"owner": "a", "limit": 2.5}, "argument 'limit' must be an integer"),
        ({"owner": "a", "limit": 10**40}, "argument 'limit' must be between 1 and 50"),
        ({"owner": "a", "state": "merged"}, "argument 'state' must be one of 'open', 'closed'"),
        ({"owner": "a", "recursive": "yes"}, "argument 'recursive' must be true or false"),
        ({"owner": "a", "labels": [1]}, "argument 'labels[0]' must be a string"),
        ({"owner": "a", "extra": 1}, "unknown argument(s) 'extra'"),
    ],
)
def test_errors_name_the_argument(arguments, message):
    with pytest.raises(ArgumentError) as error:
        validate_arguments(arguments, SCHEMA)
    assert message in str(error.value)


def test_unsupported_keywords_are_refused_at_registration():
    with pytest.raises(ValueError, match="pattern"):
        check_schema({"type": "object", "properties": {"x": {"type": "string", "pattern": "a"}}})
