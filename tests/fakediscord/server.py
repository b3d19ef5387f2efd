"""A local fake Discord (REST API v10, gateway and attachment CDN) served by aiohttp.

The unmodified discord.py 2.7 client logs in to it, receives gateway events and
interactions, and answers them; every REST call is recorded for assertions.

Usage::

    async with FakeDiscord() as fake:          # serves on 127.0.0.1:<free port>, patches discord.py
        async with run_bot(bot, fake):          # bot.start(fake.token), waits until ready
            ix = await fake.send_slash_command("ping")
            cb = await ix.wait_callback()
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import mimetypes
import re
import secrets
import socket
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakediscord import payloads as p
from tests.fakediscord.payloads import JSON, FakeGuild, FakeUser

T = TypeVar("T")

API_PREFIX = "/api/v10"
_TOKEN_PATH = re.compile(r"/(?:interactions/\d+|webhooks/\d+)/([^/]+)")


# --------------------------------------------------------------------------- records


@dataclass
class RecordedFile:
    """A file part of a multipart request (discord.py sends ``files[N]`` parts)."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Record:
    """One REST call received by the fake, with the answer it got."""

    index: int
    method: str
    #: Path below ``/api/v10``, e.g. ``/webhooks/1/tok/messages/@original``.
    path: str
    query: dict[str, str]
    #: JSON body, or the parsed ``payload_json`` part of a multipart body; None if absent.
    json: Any
    files: list[RecordedFile]
    status: int
    #: The JSON answered, as it was then (None for 204).
    response: Any
    headers: dict[str, str]
    #: True when the answer came from ``fail_next``.
    injected: bool = False

    @property
    def token(self) -> str | None:
        """The interaction token for ``/interactions/..`` and ``/webhooks/..`` paths."""
        m = _TOKEN_PATH.match(self.path)
        return m.group(1) if m else None

    def matches(self, method: str | None = None, path_regex: str | None = None) -> bool:
        if method is not None and self.method != method.upper():
            return False
        return path_regex is None or re.fullmatch(path_regex, self.path) is not None

    def describe(self) -> str:
        extra = " (injected)" if self.injected else ""
        return f"#{self.index} {self.method} {self.path} -> {self.status}{extra}"


@dataclass
class GatewayRecord:
    """One gateway frame: ``direction`` is ``"recv"`` (from the bot) or ``"send"`` (to it)."""

    index: int
    connection: int
    direction: str
    op: int | None
    t: str | None
    s: int | None
    d: Any

    def describe(self) -> str:
        return f"#{self.index} conn{self.connection} {self.direction} op={self.op} t={self.t}"


class Timeline(Generic[T]):
    """An append-only list whose items can be awaited with a predicate."""

    def __init__(self, describe: Callable[[T], str]) -> None:
        self.items: list[T] = []
        self._waiters: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []
        self._describe = describe

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    def append(self, item: T) -> None:
        self.items.append(item)
        still: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []
        for pred, fut in self._waiters:
            if fut.done():
                continue
            try:
                hit = pred(item)
            except Exception as exc:
                fut.set_exception(exc)
                continue
            if hit:
                fut.set_result(item)
            else:
                still.append((pred, fut))
        self._waiters = still

    def find(self, pred: Callable[[T], bool], start: int = 0) -> list[T]:
        return [item for item in self.items[start:] if pred(item)]

    async def wait_for(self, pred: Callable[[T], bool], timeout: float = 10.0, start: int = 0) -> T:
        """First item at index >= ``start`` matching ``pred``; waits for it if needed."""
        for item in self.items[start:]:
            if pred(item):
                return item
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            seen = "\n  ".join(self._describe(i) for i in self.items[-25:]) or "(nothing)"
            raise TimeoutError(
                f"nothing matched within {timeout}s; last {min(25, len(self.items))} of "
                f"{len(self.items)} recorded:\n  {seen}"
            ) from None


# --------------------------------------------------------------------------- interactions


@dataclass
class FakeInteraction:
    """An interaction the fake sent; use it to await the bot's answers."""

    id: str
    token: str
    type: int
    payload: JSON = field(repr=False)
    fake: FakeDiscord = field(repr=False)
    callback_type: int | None = None
    original_message_id: str | None = None
    message_ids: set[str] = field(default_factory=set)
    #: Choices of a type-8 callback (autocomplete), once answered.
    choices: list[JSON] | None = None
    #: The modal of a type-9 callback, once answered.
    modal: JSON | None = None
    #: Set by ``expire()``: the token is past its 15 minutes.
    expired: bool = False

    def expire(self) -> None:
        """Make the token invalid, as 15 minutes after the interaction: the callback gets
        404 / 10062 and webhook calls get 401 / 50027 (Invalid Webhook Token)."""
        self.expired = True

    @property
    def user(self) -> JSON:
        if "member" in self.payload:
            user: JSON = self.payload["member"]["user"]
            return user
        user = self.payload["user"]
        return user

    @property
    def original_message(self) -> JSON | None:
        if self.original_message_id is None:
            return None
        return self.fake.messages.get(self.original_message_id)

    def calls(self) -> list[Record]:
        """Every REST call made with this interaction's token, in order."""
        return [r for r in self.fake.calls if r.token == self.token]

    async def wait_call(
        self, method: str, suffix_regex: str = "", timeout: float = 10.0, start: int = 0
    ) -> Record:
        """Wait for a successful call with this token whose path ends with ``suffix_regex``."""
        rx = re.compile(re.escape(self.token) + suffix_regex + "$")

        def pred(r: Record) -> bool:
            return (
                r.method == method.upper()
                and r.token == self.token
                and r.status < 300
                and rx.search(r.path) is not None
            )

        return await self.fake.calls.wait_for(pred, timeout, start)

    async def wait_callback(self, timeout: float = 10.0) -> Record:
        """The accepted ``POST /interactions/{id}/{token}/callback``."""
        return await self.wait_call("POST", "/callback", timeout)

    async def wait_followup(self, timeout: float = 10.0, start: int = 0) -> Record:
        """A successful ``POST /webhooks/{app}/{token}`` (followup message)."""
        return await self.wait_call("POST", "", timeout, start)

    async def wait_original_edit(self, timeout: float = 10.0, start: int = 0) -> Record:
        """A successful ``PATCH /webhooks/{app}/{token}/messages/@original``."""
        return await self.wait_call("PATCH", "/messages/@original", timeout, start)


# --------------------------------------------------------------------------- server


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    retry_after: float
    is_global: bool
    code: int
    message: str | None
    remaining: int


@dataclass
class _Req:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    headers: dict[str, str]


@dataclass
class _GatewayConn:
    index: int
    ws: web.WebSocketResponse
    request: web.Request
    query: dict[str, str]
    closed: bool = False


Reply = tuple[int, Any]


def _error(status: int, code: int, message: str) -> Reply:
    return status, {"message": message, "code": code}


class FakeDiscord:
    """Fake Discord API + gateway + CDN on 127.0.0.1.

    Attributes of interest: ``bot_user``, ``application_id``, ``owner`` (app and guild owner),
    ``user`` (default interaction user), ``guild``, ``channel_id`` (the guild text channel),
    ``calls`` (Timeline[Record]), ``gateway`` (Timeline[GatewayRecord]), ``messages``,
    ``channels``, ``commands``, ``interactions``, ``identifies``, ``resumes``.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "yollava",
        guild_name: str = "Fake Guild",
        attachment_size_limit: int = p.DEFAULT_ATTACHMENT_SIZE_LIMIT,
        heartbeat_interval_ms: int = 41250,
        echo_messages: bool = True,
        strict: bool = True,
    ) -> None:
        self.token = token
        self.attachment_size_limit = attachment_size_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.echo_messages = echo_messages
        self.strict = strict
        self.snowflake = p.SnowflakeFactory()

        self.users: dict[str, FakeUser] = {}
        self.bot_user = self._add_user(FakeUser(self.snowflake(), bot_name, bot=True))
        self.application_id = self.bot_user.id
        self.owner = self._add_user(FakeUser(self.snowflake(), "owner", global_name="Owner"))
        self.user = self._add_user(FakeUser(self.snowflake(), "alice", global_name="Alice"))

        gid = self.snowflake()
        self.channel_id = self.snowflake()
        self.guild = FakeGuild(
            id=gid,
            name=guild_name,
            owner_id=self.owner.id,
            channels=[p.text_channel_dict(self.channel_id, gid, "general")],
            member_ids=[self.bot_user.id, self.owner.id, self.user.id],
        )
        self.guilds: dict[str, FakeGuild] = {gid: self.guild}
        self.channels: dict[str, JSON] = {c["id"]: c for c in self.guild.channels}
        self._dm_by_user: dict[str, str] = {}
        self.messages: dict[str, JSON] = {}
        #: Registered application commands: key None = global, else guild id.
        self.commands: dict[str | None, list[JSON]] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self._ix_by_token: dict[str, FakeInteraction] = {}
        self._cdn: dict[str, tuple[str, bytes, str]] = {}

        self.calls: Timeline[Record] = Timeline(Record.describe)
        self.gateway: Timeline[GatewayRecord] = Timeline(GatewayRecord.describe)
        self.identifies: list[JSON] = []
        self.resumes: list[JSON] = []
        #: Calls to paths the fake does not implement (answered 404).
        self.unhandled: list[Record] = []
        #: Tracebacks of exceptions raised inside the fake's handlers.
        self.errors: list[str] = []
        self._failures: list[_Failure] = []

        self.session_id: str | None = None
        self.intents = 0
        self._seq = 0
        self._events: list[JSON] = []
        self._resumable = True
        self._active: _GatewayConn | None = None
        self._connections: list[_GatewayConn] = []
        self._send_lock = asyncio.Lock()

        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern[str], bool, Any]] = []
        self._build_routes()
        self._saved: tuple[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/resume/"

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn_get)
        app.router.add_get("/gateway/{tail:.*}", self._gateway_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        for conn in list(self._connections):
            if not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=1001), 2)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def patch_discord(self) -> None:
        """Point discord.py's REST base and default gateway at this fake."""
        if self._saved is None:
            self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    def unpatch_discord(self) -> None:
        if self._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self._saved = None

    @contextlib.contextmanager
    def patched(self) -> Iterator[FakeDiscord]:
        self.patch_discord()
        try:
            yield self
        finally:
            self.unpatch_discord()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        self.patch_discord()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.unpatch_discord()
        await self.stop()
        if self.strict and exc_type is None:
            self.check()

    def check(self) -> None:
        """Raise if the fake hit an internal error or an unimplemented route."""
        problems = list(self.errors)
        problems += [f"unimplemented route: {r.method} {r.path}" for r in self.unhandled]
        if problems:
            raise AssertionError("fake Discord problems:\n" + "\n".join(problems))

    # ------------------------------------------------------------------ users & data

    def _add_user(self, user: FakeUser) -> FakeUser:
        self.users[user.id] = user
        return user

    def create_user(
        self,
        username: str | None = None,
        *,
        global_name: str | None = None,
        member: bool = True,
        dms_open: bool = True,
        locale: str = "en-US",
    ) -> FakeUser:
        """A new distinct user; ``member`` adds it to the guild's member list."""
        uid = self.snowflake()
        user = self._add_user(
            FakeUser(
                uid,
                username or f"user{len(self.users)}",
                global_name=global_name,
                dms_open=dms_open,
                locale=locale,
            )
        )
        if member:
            self.guild.member_ids.append(uid)
        return user

    def dm_channel(self, user: FakeUser) -> JSON:
        """The DM channel between the bot and ``user`` (created on first use)."""
        cid = self._dm_by_user.get(user.id)
        if cid is None:
            cid = self.snowflake()
            self._dm_by_user[user.id] = cid
            self.channels[cid] = p.dm_channel_dict(cid, user)
        return self.channels[cid]

    def messages_in(self, channel_id: str) -> list[JSON]:
        return [m for m in self.messages.values() if m["channel_id"] == channel_id]

    def dms_to(self, user: FakeUser) -> list[JSON]:
        """Messages the bot posted in its DM channel with ``user`` through the channel API
        (interaction responses in that DM are left out)."""
        cid = self._dm_by_user.get(user.id)
        if cid is None:
            return []
        return [m for m in self.messages_in(cid) if "webhook_id" not in m]

    def add_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        channel_id: str | None = None,
    ) -> JSON:
        """Serve ``data`` from the fake CDN and return a Discord attachment object."""
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        aid = self.snowflake()
        self._cdn[aid] = (filename, data, content_type)
        url = (
            f"{self.base_url}/attachments/{channel_id or self.channel_id}/{aid}/"
            f"{quote(filename)}?ex=0&is=0&hm=fake"
        )
        return p.attachment_dict(aid, filename, len(data), url, content_type, width=width, height=height)

    def attachment_data(self, attachment: JSON | str) -> bytes:
        """The bytes behind an attachment (one the test added or one the bot uploaded)."""
        aid = attachment if isinstance(attachment, str) else attachment["id"]
        return self._cdn[aid][1]

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 429,
        *,
        retry_after: float = 0.05,
        count: int = 1,
        is_global: bool = False,
        code: int = 0,
        message: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls matching (``re.fullmatch`` on the path below
        ``/api/v10``) with ``status``. A 429 carries the headers and body discord.py needs
        to retry after ``retry_after`` seconds."""
        self._failures.append(
            _Failure(
                method.upper(),
                re.compile(path_regex),
                status,
                retry_after,
                is_global,
                code,
                message,
                count,
            )
        )

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for f in self._failures:
            if f.remaining > 0 and f.method == method and f.pattern.fullmatch(path):
                f.remaining -= 1
                if f.remaining == 0:
                    self._failures.remove(f)
                return f
        return None

    def _failure_reply(self, f: _Failure) -> tuple[int, Any, dict[str, str]]:
        if f.status != 429:
            return f.status, {"message": f.message or f"{f.status}: injected", "code": f.code}, {}
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, math.ceil(f.retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + f.retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{f.retry_after:.3f}",
            "X-RateLimit-Scope": "global" if f.is_global else "user",
        }
        if f.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": f.message or "You are being rate limited.",
            "retry_after": f.retry_after,
            "global": f.is_global,
            "code": f.code,
        }
        return 429, body, headers

    # ------------------------------------------------------------------ REST plumbing

    def _build_routes(self) -> None:
        r = self._routes

        def add(methods: str, pattern: str, handler: Any, auth: bool = True) -> None:
            for m in methods.split(","):
                r.append((m, re.compile(pattern), auth, handler))

        add("GET", r"/gateway", self._h_gateway)
        add("GET", r"/gateway/bot", self._h_gateway)
        add("GET", r"/users/@me", self._h_me)
        add("GET", r"/users/(\d+)", self._h_user)
        add("POST", r"/users/@me/channels", self._h_create_dm)
        add("GET", r"/(?:oauth2/)?applications/@me", self._h_application)
        add("GET,PUT,POST", r"/applications/(\d+)/commands", self._h_commands)
        add("GET,PUT,POST", r"/applications/(\d+)/guilds/(\d+)/commands", self._h_commands)
        add("POST", r"/interactions/(\d+)/([^/]+)/callback", self._h_callback, auth=False)
        add("POST", r"/webhooks/(\d+)/([^/]+)", self._h_followup, auth=False)
        add(
            "GET,PATCH,DELETE",
            r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)",
            self._h_webhook_message,
            auth=False,
        )
        add("GET", r"/channels/(\d+)", self._h_channel)
        add("GET,POST", r"/channels/(\d+)/messages", self._h_channel_messages)
        add("GET,PATCH,DELETE", r"/channels/(\d+)/messages/(\d+)", self._h_channel_message)
        add("POST", r"/channels/(\d+)/typing", self._h_no_content)
        add(
            "PUT,DELETE",
            r"/channels/(\d+)/messages/(\d+)/reactions/([^/]+)/@me",
            self._h_no_content,
        )
        add("GET", r"/guilds/(\d+)/members/(\d+)", self._h_member)

    @staticmethod
    def _json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> web.Response:
        if status == 204 or data is None:
            return web.Response(status=204 if status < 300 else status, headers=headers)
        all_headers = {"Content-Type": "application/json"}  # exactly this: no charset
        all_headers.update(headers or {})
        return web.Response(status=status, body=json.dumps(data).encode(), headers=all_headers)

    async def _parse_body(self, request: web.Request) -> tuple[Any, list[RecordedFile]]:
        files: list[RecordedFile] = []
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                data = bytes(await part.read(decode=False))
                if part.filename is None and part.name == "payload_json":
                    payload = json.loads(data)
                elif part.filename is None:
                    payload = payload or {}
                    payload[part.name or ""] = data.decode()
                else:
                    files.append(
                        RecordedFile(
                            part.name or "",
                            part.filename,
                            part.headers.get("Content-Type"),
                            data,
                        )
                    )
            return payload, files
        raw = await request.read()
        if not raw:
            return None, files
        try:
            return json.loads(raw), files
        except ValueError:
            return raw.decode(errors="replace"), files

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        method = request.method
        body, files = await self._parse_body(request)
        req = _Req(method, path, dict(request.query), body, files, dict(request.headers))
        headers: dict[str, str] = {}
        injected = False
        unhandled = False
        failure = self._take_failure(method, path)
        if failure is not None:
            status, data, headers = self._failure_reply(failure)
            injected = True
        else:
            for m, rx, auth, handler in self._routes:
                match = rx.fullmatch(path)
                if m != method or match is None:
                    continue
                if auth and req.headers.get("Authorization") != f"Bot {self.token}":
                    status, data = _error(401, 0, "401: Unauthorized")
                    break
                try:
                    status, data = await handler(req, match)
                except Exception:
                    self.errors.append(f"{method} {path}:\n{traceback.format_exc()}")
                    # 400, not 500: discord.py would retry a 500 for seconds.
                    status, data = _error(400, 0, "fake Discord internal error (see fake.errors)")
                break
            else:
                status, data = _error(404, 0, "404: Not Found")
                unhandled = True
        record = Record(
            index=len(self.calls),
            method=method,
            path=path,
            query=req.query,
            json=copy.deepcopy(body),
            files=files,
            status=status,
            response=copy.deepcopy(data),  # a snapshot: stored messages change later
            headers=req.headers,
            injected=injected,
        )
        if unhandled:
            self.unhandled.append(record)
        self.calls.append(record)
        return self._json_response(status, data, headers)

    async def _cdn_get(self, request: web.Request) -> web.Response:
        entry = self._cdn.get(request.match_info["attachment_id"])
        if entry is None:
            return web.Response(status=404, text="not found")
        _, data, content_type = entry
        return web.Response(body=data, headers={"Content-Type": content_type})

    # ------------------------------------------------------------------ REST handlers

    async def _h_gateway(self, req: _Req, m: re.Match[str]) -> Reply:
        data: JSON = {"url": self.gateway_url.rstrip("/")}
        if req.path.endswith("/bot"):
            data["shards"] = 1
            data["session_start_limit"] = {
                "total": 1000,
                "remaining": 999,
                "reset_after": 0,
                "max_concurrency": 1,
            }
        return 200, data

    async def _h_me(self, req: _Req, m: re.Match[str]) -> Reply:
        data = self.bot_user.to_dict()
        data.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return 200, data

    async def _h_user(self, req: _Req, m: re.Match[str]) -> Reply:
        user = self.users.get(m.group(1))
        return (200, user.to_dict()) if user else _error(404, 10013, "Unknown User")

    async def _h_member(self, req: _Req, m: re.Match[str]) -> Reply:
        guild = self.guilds.get(m.group(1))
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        if m.group(2) not in guild.member_ids:
            return _error(404, 10007, "Unknown Member")
        return 200, self.users[m.group(2)].member_dict()

    async def _h_application(self, req: _Req, m: re.Match[str]) -> Reply:
        return 200, p.application_dict(self.application_id, self.owner, self.bot_user.username)

    async def _h_create_dm(self, req: _Req, m: re.Match[str]) -> Reply:
        user = self.users.get(str((req.json or {}).get("recipient_id")))
        if user is None:
            return _error(400, 50035, "Invalid Form Body")
        return 200, self.dm_channel(user)

    async def _h_commands(self, req: _Req, m: re.Match[str]) -> Reply:
        if m.group(1) != self.application_id:
            return _error(404, 10002, "Unknown Application")
        guild_id = m.group(2) if m.lastindex and m.lastindex >= 2 else None
        current = self.commands.get(guild_id, [])
        if req.method == "GET":
            return 200, current
        if req.method == "POST":
            new = [self._stored_command(req.json, guild_id, current)]
            key = (req.json.get("name"), req.json.get("type", 1))
            self.commands[guild_id] = [c for c in current if (c["name"], c["type"]) != key] + new
            return 201, new[0]
        stored = [self._stored_command(c, guild_id, current) for c in req.json or []]
        self.commands[guild_id] = stored
        return 200, stored

    def _stored_command(self, cmd: JSON, guild_id: str | None, current: list[JSON]) -> JSON:
        ctype = cmd.get("type", 1)
        old = next((c for c in current if c["name"] == cmd["name"] and c["type"] == ctype), None)
        data: JSON = {
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **cmd,
            "id": old["id"] if old else self.snowflake(),
            "application_id": self.application_id,
            "type": ctype,
            "version": self.snowflake(),
        }
        if guild_id is not None:
            data["guild_id"] = guild_id
        return data

    def lookup_command(self, name: str, cmd_type: int = 1, guild_id: str | None = None) -> JSON | None:
        """A registered command: the guild's first, then the global one."""
        scopes: list[str | None] = [guild_id, None] if guild_id else [None]
        for scope in scopes:
            for c in self.commands.get(scope, []):
                if c["name"] == name and c["type"] == cmd_type:
                    return c
        return None

    def _find_ix(self, app_id: str, token: str) -> FakeInteraction | Reply:
        ix = self._ix_by_token.get(token)
        if ix is None or app_id != self.application_id:
            return _error(404, 10015, "Unknown Webhook")
        if ix.expired:
            return _error(401, 50027, "Invalid Webhook Token")
        return ix

    def _ix_context(self, ix: FakeInteraction) -> tuple[str, str | None]:
        channel_id = ix.payload["channel_id"]
        return channel_id, ix.payload.get("guild_id")

    @staticmethod
    def _response_message_type(ix: FakeInteraction) -> int:
        if ix.type != p.APPLICATION_COMMAND:
            return 0
        return 20 if ix.payload["data"].get("type", 1) == 1 else 23  # CHAT_INPUT / CONTEXT_MENU

    def _interaction_metadata(self, ix: FakeInteraction) -> JSON:
        data: JSON = {
            "id": ix.id,
            "type": ix.type,
            "user": ix.user,
            "authorizing_integration_owners": ix.payload["authorizing_integration_owners"],
        }
        if ix.original_message_id is not None:
            data["original_response_message_id"] = ix.original_message_id
        if ix.type == p.MESSAGE_COMPONENT and "message" in ix.payload:
            data["interacted_message_id"] = ix.payload["message"]["id"]
        return data

    async def _h_callback(self, req: _Req, m: re.Match[str]) -> Reply:
        iid, token = m.groups()
        ix = self.interactions.get(iid)
        if ix is None or ix.token != token or ix.expired:
            return _error(404, 10062, "Unknown interaction")
        if ix.callback_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body: JSON = req.json or {}
        ctype = body.get("type")
        data: JSON = body.get("data") or {}
        channel_id, guild_id = self._ix_context(ix)
        message: JSON | None = None
        if ctype in (p.CALLBACK_CHANNEL_MESSAGE, p.CALLBACK_DEFERRED_CHANNEL_MESSAGE):
            if ctype == p.CALLBACK_DEFERRED_CHANNEL_MESSAGE:
                data = {"flags": (data.get("flags", 0) | p.FLAG_LOADING)}
            message = self._new_message(
                channel_id,
                data,
                req.files,
                guild_id=guild_id,
                webhook_id=self.application_id,
                message_type=self._response_message_type(ix),
                interaction=ix,
            )
            ix.original_message_id = message["id"]
            ix.message_ids.add(message["id"])
            message["interaction_metadata"] = self._interaction_metadata(ix)
        elif ctype in (p.CALLBACK_DEFERRED_UPDATE_MESSAGE, p.CALLBACK_UPDATE_MESSAGE):
            target = ix.payload.get("message")
            if target is None:
                return _error(400, 40043, "Interaction has no message to update")
            mid = target["id"]
            ix.original_message_id = mid
            ix.message_ids.add(mid)
            if mid not in self.messages:
                self.messages[mid] = dict(target)
            if ctype == p.CALLBACK_UPDATE_MESSAGE:
                self._edit_message(self.messages[mid], data, req.files)
                message = self.messages[mid]
        elif ctype == p.CALLBACK_AUTOCOMPLETE_RESULT:
            if ix.type != p.APPLICATION_COMMAND_AUTOCOMPLETE:
                return _error(400, 50035, "Invalid Form Body")
            ix.choices = list(data.get("choices", []))
        elif ctype == p.CALLBACK_MODAL:
            if ix.type in (p.MODAL_SUBMIT, p.APPLICATION_COMMAND_AUTOCOMPLETE):
                return _error(400, 50035, "Invalid Form Body")
            ix.modal = data
        else:
            return _error(400, 50035, "Invalid Form Body")
        ix.callback_type = ctype
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        flags = (message or {}).get("flags", 0)
        interaction: JSON = {
            "id": ix.id,
            "type": ix.type,
            "response_message_loading": ctype == p.CALLBACK_DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(flags & p.FLAG_EPHEMERAL),
        }
        answer: JSON = {"interaction": interaction}
        if message is not None:
            interaction["response_message_id"] = message["id"]
            answer["resource"] = {"type": ctype, "message": message}
        return 200, answer

    async def _h_followup(self, req: _Req, m: re.Match[str]) -> Reply:
        ix = self._find_ix(*m.groups())
        if not isinstance(ix, FakeInteraction):
            return ix
        if ix.callback_type is None:
            return _error(404, 10015, "Unknown Webhook")
        channel_id, guild_id = self._ix_context(ix)
        message = self._new_message(
            channel_id,
            req.json or {},
            req.files,
            guild_id=guild_id,
            webhook_id=self.application_id,
            interaction=ix,
        )
        message["interaction_metadata"] = self._interaction_metadata(ix)
        ix.message_ids.add(message["id"])
        if req.query.get("wait", "").lower() in ("1", "true"):
            return 200, message
        return 204, None

    async def _h_webhook_message(self, req: _Req, m: re.Match[str]) -> Reply:
        app_id, token, which = m.groups()
        ix = self._find_ix(app_id, token)
        if not isinstance(ix, FakeInteraction):
            return ix
        mid = ix.original_message_id if which == "@original" else which
        if mid is None or mid not in ix.message_ids or mid not in self.messages:
            return _error(404, 10008, "Unknown Message")
        message = self.messages[mid]
        if req.method == "GET":
            return 200, message
        if req.method == "DELETE":
            del self.messages[mid]
            return 204, None
        self._edit_message(message, req.json or {}, req.files)
        return 200, message

    async def _h_channel(self, req: _Req, m: re.Match[str]) -> Reply:
        ch = self.channels.get(m.group(1))
        return (200, ch) if ch else _error(404, 10003, "Unknown Channel")

    async def _h_channel_messages(self, req: _Req, m: re.Match[str]) -> Reply:
        cid = m.group(1)
        ch = self.channels.get(cid)
        if ch is None:
            return _error(404, 10003, "Unknown Channel")
        if req.method == "GET":
            limit = int(req.query.get("limit", "50"))
            found = sorted(self.messages_in(cid), key=lambda x: int(x["id"]), reverse=True)
            return 200, found[:limit]
        if ch["type"] == p.DM:
            recipient = self.users[ch["recipients"][0]["id"]]
            if not recipient.dms_open:
                return _error(403, 50007, "Cannot send messages to this user")
        body: JSON = req.json or {}
        message = self._new_message(
            cid,
            body,
            req.files,
            guild_id=ch.get("guild_id"),
            message_type=19 if body.get("message_reference") else 0,
            message_reference=body.get("message_reference"),
        )
        if self.echo_messages:
            wanted = p.INTENT_DIRECT_MESSAGES if ch["type"] == p.DM else p.INTENT_GUILD_MESSAGES
            if self.intents & wanted:
                await self.dispatch("MESSAGE_CREATE", message)
        return 200, message

    async def _h_channel_message(self, req: _Req, m: re.Match[str]) -> Reply:
        cid, mid = m.groups()
        message = self.messages.get(mid)
        if message is None or message["channel_id"] != cid:
            return _error(404, 10008, "Unknown Message")
        if req.method == "GET":
            return 200, message
        if req.method == "DELETE":
            del self.messages[mid]
            return 204, None
        if message["author"]["id"] != self.bot_user.id:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        self._edit_message(message, req.json or {}, req.files)
        return 200, message

    async def _h_no_content(self, req: _Req, m: re.Match[str]) -> Reply:
        return 204, None

    # ------------------------------------------------------------------ message store

    def _store_upload(self, f: RecordedFile, filename: str | None, channel_id: str) -> JSON:
        name = filename or f.filename or "file"
        ctype = mimetypes.guess_type(name)[0]
        return self.add_attachment(name, f.data, ctype, channel_id=channel_id)

    def _attachments(
        self, body: JSON, files: Sequence[RecordedFile], channel_id: str, existing: list[JSON]
    ) -> list[JSON]:
        uploads: dict[str, RecordedFile] = {}
        for n, f in enumerate(files):
            fm = re.fullmatch(r"files\[(\d+)\]", f.field)
            uploads[fm.group(1) if fm else str(n)] = f
        if "attachments" not in body:
            new = [self._store_upload(f, None, channel_id) for f in uploads.values()]
            return existing + new
        by_id = {a["id"]: a for a in existing}
        result: list[JSON] = []
        for a in body["attachments"] or []:
            aid = str(a.get("id"))
            if aid in uploads:
                result.append(self._store_upload(uploads.pop(aid), a.get("filename"), channel_id))
            elif aid in by_id:
                result.append(by_id[aid])
        result += [self._store_upload(f, None, channel_id) for f in uploads.values()]
        return result

    def _new_message(
        self,
        channel_id: str,
        body: JSON,
        files: Sequence[RecordedFile],
        *,
        guild_id: str | None = None,
        webhook_id: str | None = None,
        message_type: int = 0,
        message_reference: JSON | None = None,
        interaction: FakeInteraction | None = None,
    ) -> JSON:
        mid = self.snowflake()
        message = p.message_dict(
            mid,
            channel_id,
            self.bot_user,
            content=body.get("content") or "",
            guild_id=guild_id,
            message_type=message_type,
            flags=body.get("flags") or 0,
            embeds=body.get("embeds"),
            components=body.get("components"),
            attachments=self._attachments(body, files, channel_id, []),
            webhook_id=webhook_id,
            application_id=self.application_id if interaction else None,
            message_reference=message_reference,
        )
        if "poll" in body and body["poll"] is not None:
            message["poll"] = body["poll"]
        self.messages[mid] = message
        return message

    def _edit_message(self, message: JSON, body: JSON, files: Sequence[RecordedFile]) -> None:
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if "flags" in body and body["flags"] is not None:
            message["flags"] = (message["flags"] & p.FLAG_EPHEMERAL) | body["flags"]
        message["flags"] &= ~p.FLAG_LOADING
        message["attachments"] = self._attachments(body, files, message["channel_id"], message["attachments"])
        message["edited_timestamp"] = p.now_iso()

    # ------------------------------------------------------------------ gateway

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _GatewayConn(len(self._connections), ws, request, dict(request.query))
        self._connections.append(conn)
        await self._gw_send(conn, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    try:
                        await self._gw_receive(conn, json.loads(msg.data))
                    except Exception:
                        self.errors.append(f"gateway:\n{traceback.format_exc()}")
        finally:
            conn.closed = True
            if self._active is conn:
                self._active = None
        return ws

    async def _gw_send(self, conn: _GatewayConn, frame: JSON) -> None:
        frame = {"op": frame["op"], "d": frame.get("d"), "s": frame.get("s"), "t": frame.get("t")}
        self.gateway.append(
            GatewayRecord(
                len(self.gateway), conn.index, "send", frame["op"], frame["t"], frame["s"], frame["d"]
            )
        )
        if conn.closed or conn.ws.closed:
            return
        try:
            await conn.ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError):
            conn.closed = True

    def _next_event(self, event: str, data: Any) -> JSON:
        self._seq += 1
        frame = {"op": 0, "t": event, "s": self._seq, "d": data}
        self._events.append(frame)
        return frame

    async def _gw_receive(self, conn: _GatewayConn, frame: JSON) -> None:
        op = frame.get("op")
        d: Any = frame.get("d")
        self.gateway.append(GatewayRecord(len(self.gateway), conn.index, "recv", op, frame.get("t"), None, d))
        if op == 1:  # HEARTBEAT
            await self._gw_send(conn, {"op": 11})
        elif op == 2:  # IDENTIFY
            await self._identify(conn, d)
        elif op == 6:  # RESUME
            await self._resume(conn, d)
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            guild = self.guilds.get(str(d.get("guild_id")))
            if guild is not None:
                members = [self.users[u].member_dict() for u in guild.member_ids]
                chunk: JSON = {
                    "guild_id": guild.id,
                    "members": members,
                    "chunk_index": 0,
                    "chunk_count": 1,
                }
                if d.get("nonce") is not None:
                    chunk["nonce"] = d["nonce"]
                await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _identify(self, conn: _GatewayConn, d: JSON) -> None:
        self.identifies.append(d)
        if d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        self.intents = int(d.get("intents") or 0)
        async with self._send_lock:
            self.session_id = secrets.token_hex(16)
            self._seq = 0
            self._events = []
            self._resumable = True
            ready = {
                "v": 10,
                "user": {**self.bot_user.to_dict(), "verified": True, "mfa_enabled": False},
                "guilds": [{"id": g, "unavailable": True} for g in self.guilds],
                "session_id": self.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.resume_gateway_url.rstrip("/"),
                "application": {"id": self.application_id, "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "user_settings": {},
                "shard": [0, 1],
                "_trace": ["fake-discord"],
            }
            await self._gw_send(conn, self._next_event("READY", ready))
            for guild in self.guilds.values():
                members = [self.users[u] for u in guild.member_ids]
                if not self.intents & p.INTENT_GUILD_PRESENCES:
                    members = [self.bot_user]
                await self._gw_send(
                    conn, self._next_event("GUILD_CREATE", p.guild_create_dict(guild, members))
                )
            self._active = conn

    async def _resume(self, conn: _GatewayConn, d: JSON) -> None:
        self.resumes.append(d)
        if not self._resumable or d.get("session_id") != self.session_id or d.get("token") != self.token:
            await self._gw_send(conn, {"op": 9, "d": False})
            return
        last = int(d.get("seq") or 0)
        async with self._send_lock:
            for frame in list(self._events):
                if frame["s"] > last:
                    await self._gw_send(conn, frame)
            await self._gw_send(conn, self._next_event("RESUMED", {"_trace": ["fake-discord"]}))
            self._active = conn

    async def dispatch(self, event: str, data: Any) -> int:
        """Send a DISPATCH event to the bot (queued for replay if it is disconnected);
        returns its sequence number."""
        async with self._send_lock:
            frame = self._next_event(event, data)
            conn = self._active
            if conn is not None and not conn.closed:
                await self._gw_send(conn, frame)
        return int(frame["s"])

    async def disconnect_gateway(self, code: int | None = 4000, *, resumable: bool = True) -> None:
        """Drop the bot's gateway connection: with close ``code`` (4000 = unknown error, the
        bot resumes), or with ``code=None`` abort the TCP connection. With
        ``resumable=False`` the next RESUME gets INVALID_SESSION and the bot re-identifies."""
        async with self._send_lock:
            conn = self._active
            self._active = None
            self._resumable = resumable
        if conn is None:
            raise RuntimeError("no active gateway connection")
        conn.closed = True
        if code is None:
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
        else:
            await conn.ws.close(code=code, message=b"fake disconnect")

    @property
    def connected(self) -> bool:
        return self._active is not None and not self._active.closed

    async def wait_resumed(self, timeout: float = 10.0, start: int = 0) -> GatewayRecord:
        """Wait until the fake has sent RESUMED (gateway record index >= ``start``)."""
        return await self.gateway.wait_for(
            lambda g: g.direction == "send" and g.t == "RESUMED", timeout, start
        )

    async def wait_ready_sent(self, timeout: float = 10.0, start: int = 0) -> GatewayRecord:
        return await self.gateway.wait_for(lambda g: g.direction == "send" and g.t == "READY", timeout, start)

    # ------------------------------------------------------------------ REST waiting

    async def wait_for(
        self, predicate: Callable[[Record], bool], timeout: float = 10.0, start: int = 0
    ) -> Record:
        """First recorded REST call (index >= ``start``) matching ``predicate``."""
        return await self.calls.wait_for(predicate, timeout, start)

    async def wait_for_call(
        self,
        method: str,
        path_regex: str,
        timeout: float = 10.0,
        *,
        start: int = 0,
        predicate: Callable[[Record], bool] | None = None,
        ok: bool = True,
    ) -> Record:
        """First call with ``method`` whose path fullmatches ``path_regex`` (and, with
        ``ok``, answered 2xx)."""

        def pred(r: Record) -> bool:
            return (
                r.matches(method, path_regex)
                and (not ok or r.status < 300)
                and (predicate is None or predicate(r))
            )

        return await self.calls.wait_for(pred, timeout, start)

    def find_calls(self, method: str | None = None, path_regex: str | None = None) -> list[Record]:
        return [r for r in self.calls if r.matches(method, path_regex)]

    # ------------------------------------------------------------------ interactions

    def _new_interaction(
        self,
        itype: int,
        data: JSON,
        *,
        user: FakeUser | None,
        guild: bool,
        channel_id: str | None = None,
        message: JSON | None = None,
        locale: str | None = None,
    ) -> FakeInteraction:
        user = user or self.user
        iid = self.snowflake()
        token = p.new_token()
        payload: JSON = {
            "id": iid,
            "application_id": self.application_id,
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "app_permissions": p.ALL_PERMISSIONS,
            "locale": locale or user.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild:
            cid = channel_id or self.channel_id
            gid = self.channels[cid].get("guild_id") or self.guild.id
            g = self.guilds[gid]
            payload.update(
                {
                    "guild_id": g.id,
                    "guild": g.partial_dict(),
                    "guild_locale": g.locale,
                    "channel_id": cid,
                    "channel": self.channels[cid],
                    "member": user.member_dict(permissions=p.ALL_PERMISSIONS),
                    "authorizing_integration_owners": {"0": g.id},
                    "context": 0,
                }
            )
        else:
            dm = self.dm_channel(user)
            payload.update(
                {
                    "channel_id": dm["id"],
                    "channel": dm,
                    "user": user.to_dict(),
                    "authorizing_integration_owners": {"0": "0"},
                    "context": 1,
                }
            )
        if message is not None:
            payload["message"] = message
        ix = FakeInteraction(iid, token, itype, payload, self)
        self.interactions[iid] = ix
        self._ix_by_token[token] = ix
        return ix

    async def _send_interaction(self, ix: FakeInteraction) -> FakeInteraction:
        await self.dispatch("INTERACTION_CREATE", ix.payload)
        return ix

    def _option(self, name: str, value: Any, resolved: JSON, guild: bool) -> JSON:
        if isinstance(value, Mapping) and "filename" in value:
            resolved.setdefault("attachments", {})[value["id"]] = dict(value)
            return {"name": name, "type": p.OPT_ATTACHMENT, "value": value["id"]}
        if isinstance(value, FakeUser):
            resolved.setdefault("users", {})[value.id] = value.to_dict()
            if guild:
                member = value.member_dict(with_user=False, permissions=p.ALL_PERMISSIONS)
                resolved.setdefault("members", {})[value.id] = member
            return {"name": name, "type": p.OPT_USER, "value": value.id}
        if isinstance(value, bool):
            return {"name": name, "type": p.OPT_BOOLEAN, "value": value}
        if isinstance(value, int):
            return {"name": name, "type": p.OPT_INTEGER, "value": value}
        if isinstance(value, float):
            return {"name": name, "type": p.OPT_NUMBER, "value": value}
        return {"name": name, "type": p.OPT_STRING, "value": str(value)}

    def _command_data(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None,
        *,
        attachments: Sequence[JSON],
        guild: bool,
        focused: str | None = None,
    ) -> JSON:
        resolved: JSON = {}
        for att in attachments:
            resolved.setdefault("attachments", {})[att["id"]] = dict(att)
        if options is None:
            opts: list[JSON] = []
        elif isinstance(options, Mapping):
            opts = [self._option(k, v, resolved, guild) for k, v in options.items()]
        else:
            opts = []
            for raw in options:
                o = dict(raw)
                if isinstance(o.get("value"), Mapping | FakeUser):
                    o.update(self._option(o["name"], o["value"], resolved, guild))
                opts.append(o)
        if focused is not None:
            for o in opts:
                if o["name"] == focused:
                    o["focused"] = True
                    o["value"] = str(o.get("value", ""))
        parts = name.split()
        top = parts[0]
        if len(parts) == 2:
            opts = [{"name": parts[1], "type": p.OPT_SUB_COMMAND, "options": opts}]
        elif len(parts) == 3:
            sub = {"name": parts[2], "type": p.OPT_SUB_COMMAND, "options": opts}
            opts = [{"name": parts[1], "type": p.OPT_SUB_COMMAND_GROUP, "options": [sub]}]
        elif len(parts) != 1:
            raise ValueError(f"bad command name {name!r}")
        gid = self.guild.id if guild else None
        cmd = self.lookup_command(top, 1, gid)
        data: JSON = {
            "id": cmd["id"] if cmd else self.snowflake(),
            "name": top,
            "type": 1,
        }
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if cmd is not None and "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        return data

    async def send_slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        user: FakeUser | None = None,
        guild: bool = True,
        attachments: Sequence[JSON] = (),
        channel_id: str | None = None,
        locale: str | None = None,
    ) -> FakeInteraction:
        """Send a type-2 chat-input INTERACTION_CREATE.

        ``name`` may be ``"cmd"``, ``"cmd sub"`` or ``"cmd group sub"``. ``options`` is either
        a mapping name → value (str/int/float/bool, a FakeUser, or an attachment dict from
        ``add_attachment``; types and ``data.resolved`` are derived) or a raw list of Discord
        option objects. ``guild=False`` sends it from the user's DM with the bot."""
        data = self._command_data(name, options, attachments=attachments, guild=guild)
        ix = self._new_interaction(
            p.APPLICATION_COMMAND, data, user=user, guild=guild, channel_id=channel_id, locale=locale
        )
        return await self._send_interaction(ix)

    async def send_autocomplete(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        focused: str | None = None,
        user: FakeUser | None = None,
        guild: bool = True,
        channel_id: str | None = None,
    ) -> FakeInteraction:
        """Send a type-4 autocomplete interaction; ``focused`` names the option being typed
        (or mark it ``"focused": True`` in a raw option list). Answer: ``ix.choices``."""
        data = self._command_data(name, options, attachments=(), guild=guild, focused=focused)
        ix = self._new_interaction(
            p.APPLICATION_COMMAND_AUTOCOMPLETE, data, user=user, guild=guild, channel_id=channel_id
        )
        return await self._send_interaction(ix)

    def _resolve_message(self, message: JSON | str) -> JSON:
        mid = message if isinstance(message, str) else message["id"]
        stored = self.messages.get(mid)
        if stored is not None:
            return stored
        if isinstance(message, str):
            raise KeyError(f"unknown message {mid}")
        return message

    async def send_component(
        self,
        custom_id: str,
        message: JSON | str,
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
        user: FakeUser | None = None,
    ) -> FakeInteraction:
        """Click a component (type-3 interaction) on ``message`` (a message dict the bot
        sent, e.g. ``record.response``, or its id). ``values`` for select menus."""
        msg = self._resolve_message(message)
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        guild = "guild_id" in msg
        ix = self._new_interaction(
            p.MESSAGE_COMPONENT,
            data,
            user=user,
            guild=guild,
            channel_id=msg["channel_id"] if guild else None,
            message=msg,
        )
        return await self._send_interaction(ix)

    async def send_modal_submit(
        self,
        custom_id: str,
        values: Mapping[str, str],
        *,
        user: FakeUser | None = None,
        guild: bool = True,
        channel_id: str | None = None,
    ) -> FakeInteraction:
        """Submit a modal (type 5): ``values`` maps text-input custom_id → text."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in values.items()
        ]
        data: JSON = {"custom_id": custom_id, "components": rows}
        ix = self._new_interaction(p.MODAL_SUBMIT, data, user=user, guild=guild, channel_id=channel_id)
        return await self._send_interaction(ix)

    async def send_message_context_menu(
        self, name: str, target_message: JSON | str, *, user: FakeUser | None = None
    ) -> FakeInteraction:
        """Run a message context-menu command (type 2, data.type 3) on ``target_message``."""
        msg = self._resolve_message(target_message)
        guild = "guild_id" in msg
        cmd = self.lookup_command(name, 3, msg.get("guild_id"))
        data: JSON = {
            "id": cmd["id"] if cmd else self.snowflake(),
            "name": name,
            "type": 3,
            "target_id": msg["id"],
            "resolved": {"messages": {msg["id"]: msg}},
        }
        if cmd is not None and "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        ix = self._new_interaction(
            p.APPLICATION_COMMAND,
            data,
            user=user,
            guild=guild,
            channel_id=msg["channel_id"] if guild else None,
        )
        return await self._send_interaction(ix)

    async def send_user_context_menu(
        self, name: str, target: FakeUser, *, user: FakeUser | None = None, guild: bool = True
    ) -> FakeInteraction:
        """Run a user context-menu command (type 2, data.type 2) on ``target``."""
        cmd = self.lookup_command(name, 2, self.guild.id if guild else None)
        resolved: JSON = {"users": {target.id: target.to_dict()}}
        if guild:
            resolved["members"] = {target.id: target.member_dict(with_user=False)}
        data: JSON = {
            "id": cmd["id"] if cmd else self.snowflake(),
            "name": name,
            "type": 2,
            "target_id": target.id,
            "resolved": resolved,
        }
        if cmd is not None and "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        ix = self._new_interaction(p.APPLICATION_COMMAND, data, user=user, guild=guild)
        return await self._send_interaction(ix)

    async def send_message(
        self,
        content: str,
        *,
        author: FakeUser | None = None,
        channel_id: str | None = None,
        dm: bool = False,
        attachments: Sequence[JSON] = (),
    ) -> JSON:
        """A user posts a message (MESSAGE_CREATE): in the guild text channel, another
        channel, or (``dm=True``) the author's DM with the bot. ``<@id>`` mentions of known
        users are resolved. Returns the stored message."""
        author = author or self.user
        if dm:
            cid = self.dm_channel(author)["id"]
            guild_id = None
        else:
            cid = channel_id or self.channel_id
            guild_id = self.channels[cid].get("guild_id")
        mentions = [
            self.users[u].to_dict()
            for u in dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
            if u in self.users
        ]
        message = p.message_dict(
            self.snowflake(),
            cid,
            author,
            content=content,
            guild_id=guild_id,
            attachments=[dict(a) for a in attachments],
            mentions=mentions,
            member=author.member_dict(with_user=False) if guild_id else None,
        )
        self.messages[message["id"]] = message
        await self.dispatch("MESSAGE_CREATE", message)
        return message


# --------------------------------------------------------------------------- bot runner


@contextlib.asynccontextmanager
async def run_bot(
    bot: discord.Client,
    fake: FakeDiscord,
    *,
    ready_timeout: float = 10.0,
    guild_ready_timeout: float = 0.05,
) -> AsyncIterator[discord.Client]:
    """Start ``bot`` against ``fake`` (``bot.start(fake.token)``), wait until it is ready,
    and close it cleanly on exit. Lowers the client's ``guild_ready_timeout`` (default 2 s)."""
    state = bot._connection
    state.guild_ready_timeout = min(state.guild_ready_timeout, guild_ready_timeout)
    task = asyncio.create_task(bot.start(fake.token), name="fake-discord-bot")
    try:
        deadline = asyncio.get_running_loop().time() + ready_timeout
        while not bot.is_ready():
            if task.done():
                task.result()  # raises the start error
                raise RuntimeError("bot stopped before it was ready")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"bot not ready within {ready_timeout}s")
            await asyncio.sleep(0.005)
        yield bot
    finally:
        await bot.close()
        if not task.done():
            try:
                await asyncio.wait_for(task, 10)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        elif not task.cancelled():
            task.exception()  # mark retrieved; errors already surfaced above
