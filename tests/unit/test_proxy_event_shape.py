"""The local server turns HTTP into the event API Gateway sends; the recorded event (tests/events) is the
reference for its shape, so the resolver sees the same fields on both paths."""

from __future__ import annotations

from tests.events import load
from visual_search.server.events import to_proxy_event


def test_the_local_servers_event_has_every_field_of_the_recorded_api_gateway_event():
    recorded = load("apigw_rest_proxy")
    built = to_proxy_event("POST", "/v1_1/demo/image/upload?x=1&x=2", {"Host": "h"}, b"\x00\xff", "10.0.0.1")
    assert set(recorded) <= set(built)
    needed = {"requestId", "stage", "httpMethod", "path", "resourcePath", "identity"}
    assert needed <= set(recorded["requestContext"]) & set(built["requestContext"])
    assert built["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert built["queryStringParameters"] == {"x": "2"}  # API Gateway keeps the last value
    assert built["isBase64Encoded"] is True
