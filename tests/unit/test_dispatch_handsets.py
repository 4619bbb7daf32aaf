"""The emulator's caregiver handsets as plain functions over a fake HTTP transport: registry
lists read page by page (or whole, where a list is plain), and an offer that moved on
before the caregiver tapped "accept" ends quietly (the loop against the real services is in
``tests/e2e/test_dispatch_handsets.py``)."""

from __future__ import annotations

import asyncio

import httpx

from services.emulator import handsets


def client(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x")


async def _all(c: httpx.AsyncClient) -> list[int]:
    return [x["n"] async for x in handsets._each(c, "/v1/things", {})]


def test_registry_lists_are_read_page_by_page_or_whole():
    pages = {None: ([1, 2], "c1"), "c1": ([3], None)}

    def paged(request: httpx.Request) -> httpx.Response:
        items, nxt = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"items": [{"n": n} for n in items], "next_cursor": nxt})

    def plain(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"n": 1}, {"n": 2}])

    async def both() -> tuple[list[int], list[int]]:
        async with client(paged) as a, client(plain) as b:
            return await _all(a), await _all(b)

    assert asyncio.run(both()) == ([1, 2, 3], [1, 2])


def test_an_offer_that_moved_on_is_left_alone():
    calls: list[str] = []

    def dispatch(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        return httpx.Response(409, json={"title": "the dispatch is offered to someone else"})

    def registry(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no travel without an accepted offer")

    h = handsets.Handset("s1", "o1", "token", busy={"d1"})

    async def go() -> str:
        async with client(dispatch) as d, client(registry) as r:
            return await handsets.respond(
                h, {"id": "d1"}, d, r, {}, speed=60.0, pace=handsets.Pace(accept_after_s=0)
            )

    assert asyncio.run(go()) == "moved_on"
    assert calls == ["POST /v1/dispatches/d1/accept"] and h.busy == set()
