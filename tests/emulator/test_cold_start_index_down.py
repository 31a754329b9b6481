"""A search function whose cold start finds the index unreachable, run as Lambda runs it: the request
answers 429 with Retry-After (an error out of the init phase would be API Gateway's 502), and once the
index is back and the back-off has passed, the same execution environment answers 200."""

from __future__ import annotations

import time

from tests.emulator.calls import answer, basic, text_search


def test_a_cold_start_with_the_index_unreachable_answers_429_then_200_once_it_is_back(
    search_with_index_down, world
):
    function, proxy = search_with_index_down
    authorization = basic(world.api_key, world.api_secret)

    cold = function.invoke(text_search(authorization))

    status, headers, body = answer(cold.payload)
    assert (cold.status, status) == (200, 429), body
    assert int(headers["Retry-After"]) > 0
    assert cold.init_ms is not None  # it was the cold start
    proxy.down = False
    time.sleep(1.1)  # the first back-off (visual_search.index.first_use)
    status, _, body = answer(function.invoke(text_search(authorization)).payload)
    assert status == 200, body
    assert proxy.forwarded > 0
