import pytest

from aegis_tornado.mcp import jsonrpc
from aegis_tornado.mcp.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    JsonRpcError,
    parse_body,
)


@pytest.mark.parametrize("body", [b"", b"{", b"\xff", b"NaN", b'{"a": Infinity}', b"[" * 100000])
def test_parse_errors(body):
    with pytest.raises(JsonRpcError) as error:
        parse_body(body)
    assert error.value.code in (PARSE_ERROR, INVALID_REQUEST)
    assert error.value.response()["id"] is None


def test_deep_nesting_is_refused_before_recursion_trouble():
    body = '{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":' + "[" * 200 + "]" * 200 + "}}"
    with pytest.raises(JsonRpcError) as error:
        parse_body(body)
    assert error.value.code == INVALID_REQUEST


def test_classification():
    request = parse_body(b'{"jsonrpc":"2.0","id":"a","method":"ping"}').items[0]
    assert request.kind == "request" and request.id == "a" and request.params == {}
    note = parse_body(b'{"jsonrpc":"2.0","method":"n","params":null}').items[0]
    assert note.kind == "notification"
    response = parse_body(b'{"jsonrpc":"2.0","id":1,"result":{}}').items[0]
    assert response.kind == "response"


@pytest.mark.parametrize(
    "body, code",
    [
        (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":{},"method":"ping"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":5}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', INVALID_PARAMS),
        (b'{"id":1,"method":"ping"}', INVALID_REQUEST),
    ],
)
def test_invalid_single_messages(body, code):
    with pytest.raises(JsonRpcError) as error:
        parse_body(body)
    assert error.value.code == code


def test_batch_keeps_per_item_errors():
    parsed = parse_body(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}, 5]')
    assert parsed.is_batch
    assert isinstance(parsed.items[1], JsonRpcError)


# --------------------------------------------------------------------------------------------
# encode: orjson first, the json path for what orjson refuses; the same strict output either way
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, expected",
    [
        ({"a": 1, "b": "é😀"}, '{"a":1,"b":"é😀"}'),
        ({"x": float("nan"), "y": [float("inf"), -float("inf")]}, '{"x":null,"y":[null,null]}'),
        ({"s": "a\ud800b"}, '{"s":"a\ufffdb"}'),  # orjson refuses: the json path repairs
        ({"n": 2**70}, '{"n":1180591620717411303424}'),  # beyond 64 bits: the json path
        ({1: "one"}, '{"1":"one"}'),  # a non-string key: the json path converts it
        ({"s": "a\ud800", "x": float("nan")}, '{"s":"a\ufffd","x":null}'),
    ],
)
def test_encode_is_strict_json_whichever_encoder_wrote_it(message, expected):
    assert jsonrpc.encode(message) == expected
    assert jsonrpc.encode_bytes(message) == expected.encode("utf-8")


def test_encode_still_refuses_what_is_not_json():
    with pytest.raises(TypeError):
        jsonrpc.encode({"x": object()})
