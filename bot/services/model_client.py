"""The bot's side of the worker connection: HTTP calls that fail fast and never block the loop.

A dead, starting or restarting worker is reported as :class:`WorkerUnavailable` (connection
refused, no URL yet, or a timeout); a refusal of one request comes back as
:class:`WorkerRefused` with the worker's code, which the services turn into a user-facing error.
"""

from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from bot.services.errors import WorkerUnavailable
from bot.worker.protocol import (
    TOKEN_HEADER,
    AnswerReply,
    AnswerRequest,
    ErrorCode,
    Health,
    RecognizeReply,
    RecognizeRequest,
)

DEFAULT_TIMEOUT_SECONDS = 180.0
HEALTH_TIMEOUT_SECONDS = 2.0


class WorkerRefused(Exception):
    """The worker answered with an error for this request."""

    def __init__(self, code: str, message: str, subject_ids: list[str]) -> None:
        super().__init__(message)
        self.code = code
        self.subject_ids = subject_ids


class WorkerEndpoint(Protocol):
    """Where the worker listens: ``url`` is None while it is (re)starting."""

    @property
    def url(self) -> str | None: ...

    @property
    def token(self) -> str | None: ...


@dataclass(frozen=True)
class FixedEndpoint:
    """A worker at a known address (e.g. one started by hand on another port)."""

    url: str | None
    token: str | None = None


class ModelClient(Protocol):
    """What the services need of the model: answers, recognition, health and a nudge."""

    async def answer(self, request: AnswerRequest) -> AnswerReply: ...

    async def recognize(self, request: RecognizeRequest) -> RecognizeReply: ...

    async def health(self) -> Health | None: ...

    async def wake(self) -> None: ...

    async def close(self) -> None: ...


class HttpModelClient:
    """:class:`ModelClient` over the worker's HTTP API (see :mod:`bot.worker.protocol`).

    Args:
        endpoint: where the worker is (a supervisor's endpoint follows its restarts).
        timeout_seconds: the longest an answer may take, waiting for the model included.
    """

    def __init__(self, endpoint: WorkerEndpoint, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.endpoint = endpoint
        self.timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def answer(self, request: AnswerRequest) -> AnswerReply:
        return AnswerReply.from_json(await self._post("/v1/answer", request.to_json()))

    async def recognize(self, request: RecognizeRequest) -> RecognizeReply:
        return RecognizeReply.from_json(await self._post("/v1/recognize", request.to_json()))

    async def health(self) -> Health | None:
        """The worker's own report, or None if it does not answer within a moment."""
        try:
            data = await self._call("GET", "/v1/health", None, timeout=HEALTH_TIMEOUT_SECONDS)
        except (WorkerUnavailable, WorkerRefused):
            return None
        return Health.from_json(data)

    async def wake(self) -> None:
        """Tell an idle worker a job is queued (best effort: it polls anyway)."""
        try:
            await self._call("POST", "/v1/wake", {}, timeout=HEALTH_TIMEOUT_SECONDS)
        except (WorkerUnavailable, WorkerRefused):
            return

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", path, body, timeout=self.timeout_seconds)

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None, *, timeout: float
    ) -> dict[str, Any]:
        url = self.endpoint.url
        if url is None:
            raise WorkerUnavailable("the worker is starting")
        headers = {TOKEN_HEADER: self.endpoint.token} if self.endpoint.token else {}
        session = self._client()
        try:
            async with session.request(
                method,
                url + path,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                data = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            raise WorkerUnavailable(f"{type(error).__name__}: {error}") from error
        if response.status >= 400 or not isinstance(data, dict):
            details = data if isinstance(data, dict) else {}
            raise WorkerRefused(
                str(details.get("error", ErrorCode.INTERNAL.value)),
                str(details.get("message", f"HTTP {response.status}")),
                [str(s) for s in details.get("subject_ids", [])],
            )
        return data

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session
