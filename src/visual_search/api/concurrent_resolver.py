"""The one place that makes Powertools' resolver safe to share between threads.

Powertools keeps the request being resolved on the resolver, as a Lambda resolves one event at a time:
the event and Lambda context on a class attribute (`BaseRouter.current_event`), the route arguments,
the matched route and the validated request in the instance's `context` dict (cleared after every
request), and it builds each route's middleware stack lazily on first use. The local server resolves
many requests at once on one resolver (one per process, so one rate-limit window too), so here all of
that request state lives per thread, and the lazy build runs once under a lock (two threads building it
together would wrap the route twice).

These are Powertools internals (`BaseRouter.current_event`, `context`, `_to_proxy_event`,
`_call_route`, `route._build_middleware_stack`), pinned by locks/*.txt and layers/requirements.lock.
tests/functional/test_concurrency.py fails if a release moves them: run it when raising the pin.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter


class ConcurrentResolver(APIGatewayRestResolver):
    def __init__(self, *args, **kwargs):
        self._local = threading.local()
        self._build_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _state(self):
        state = self._local
        if not hasattr(state, "context"):
            state.event, state.lambda_context, state.context, state.frames = None, None, {}, []
        return state

    @property
    def current_event(self):
        return self._state().event

    @current_event.setter
    def current_event(self, value) -> None:
        self._state().event = value

    @property
    def lambda_context(self):
        return self._state().lambda_context

    @lambda_context.setter
    def lambda_context(self, value) -> None:
        self._state().lambda_context = value

    @property
    def context(self) -> dict:
        return self._state().context

    @context.setter
    def context(self, value: dict) -> None:
        self._state().context = value

    @property
    def processed_stack_frames(self) -> list[str]:
        return self._state().frames

    @processed_stack_frames.setter
    def processed_stack_frames(self, value: list[str]) -> None:
        self._state().frames = value

    def resolve(self, event: Mapping[str, Any], context) -> dict:
        # test_a_request_paused_while_another_is_served_still_reads_its_own_parameters and
        # test_route_arguments_of_a_paused_request_survive_another_request_on_the_same_resolver.
        # Powertools assigns these to the base class, where this class's properties never look.
        state = self._state()
        state.event = self._to_proxy_event(dict(event))
        state.lambda_context = context
        try:
            return super().resolve(event, context)
        finally:
            # A pooled thread would otherwise keep its last request (a whole upload's body, twice)
            # until it happens to serve another.
            state.event = state.lambda_context = None
            state.context = {}
            # Powertools also sets the event on the base class, for routers of no resolver (ours reads
            # this resolver's, `include_router`): released too, or the last request's event would stay.
            BaseRouter.current_event = None  # type: ignore[assignment]
            BaseRouter.lambda_context = None  # type: ignore[assignment]

    def _call_route(self, route, route_arguments):
        # Private in Powertools: test_first_requests_arriving_together_build_each_route_once.
        if not route._middleware_stack_built:
            with self._build_lock:
                if not route._middleware_stack_built:
                    route._build_middleware_stack(router_middlewares=self._router_middlewares, app=self)
        return super()._call_route(route, route_arguments)
