"""The worker's HTTP server (aiohttp, 127.0.0.1): answers and recognition for the bot.

See :mod:`bot.worker.protocol` for the wire format and why HTTP. Handlers run the blocking model
calls in threads (``asyncio.to_thread``), so the server keeps accepting requests (and health
checks) while the model works; the :class:`~bot.worker.gate.PriorityGate` orders model use.
"""

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.worker.inference import Answerer, RequestRefused
from bot.worker.protocol import (
    TOKEN_HEADER,
    AnswerRequest,
    ErrorCode,
    Health,
    RecognizeRequest,
)

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024  # a 10 MiB image, base64-encoded, plus JSON
_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_TRAINED: 409,
    ErrorCode.ARTIFACT: 422,
    ErrorCode.INTERNAL: 500,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    answerer: Answerer,
    *,
    health: Callable[[], Health],
    token: str | None,
    wake: Callable[[], None] = lambda: None,
) -> web.Application:
    """The aiohttp application; ``token`` (if set) must come in every request's header.

    ``wake`` is called by ``POST /v1/wake`` (the bot queued a job: stop idling).
    """

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and not hmac.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return _error(ErrorCode.UNAUTHORIZED, "missing or wrong worker token")
        return await handler(request)

    async def get_health(_request: web.Request) -> web.Response:
        return web.json_response(health().to_json())

    async def post_wake(_request: web.Request) -> web.Response:
        wake()
        return web.json_response({"ok": True})

    async def post_answer(request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            parsed = AnswerRequest.from_json(body)
        except (KeyError, TypeError, ValueError) as error:
            return _error(ErrorCode.BAD_REQUEST, f"malformed answer request: {error}")
        return await _serve(lambda: answerer.answer(parsed).to_json())

    async def post_recognize(request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            parsed = RecognizeRequest.from_json(body)
        except (KeyError, TypeError, ValueError) as error:
            return _error(ErrorCode.BAD_REQUEST, f"malformed recognize request: {error}")
        return await _serve(lambda: answerer.recognize(parsed).to_json())

    app = web.Application(middlewares=[authenticate], client_max_size=MAX_REQUEST_BYTES)
    app.router.add_get("/v1/health", get_health)
    app.router.add_post("/v1/wake", post_wake)
    app.router.add_post("/v1/answer", post_answer)
    app.router.add_post("/v1/recognize", post_recognize)
    return app


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": ErrorCode.BAD_REQUEST, "message": f"not JSON: {error}"}),
            content_type="application/json",
        ) from error
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": ErrorCode.BAD_REQUEST, "message": "expected a JSON object"}),
            content_type="application/json",
        )
    return body


async def _serve(work: Callable[[], dict[str, Any]]) -> web.Response:
    try:
        return web.json_response(await asyncio.to_thread(work))
    except RequestRefused as refused:
        return _error(refused.code, str(refused), subject_ids=refused.subject_ids)
    except Exception:  # one bad request must not take the server down
        log.exception("request failed")
        return _error(ErrorCode.INTERNAL, "the model failed on this request")


def _error(code: ErrorCode, message: str, *, subject_ids: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": code.value, "message": message}
    if subject_ids:
        body["subject_ids"] = subject_ids
    return web.json_response(body, status=_STATUS[code])
