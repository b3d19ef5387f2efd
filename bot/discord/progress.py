"""Keeping /teach replies current while their jobs run, and telling users when a job ends.

:class:`TrainingMessages` reads every :class:`JobUpdate` the services publish. A job started by
/teach in this process has a :class:`TrainingMessage`: its ephemeral reply is edited with a
progress bar at most once per ``edit_interval_seconds`` (Discord rate-limits edits, and a bar
that moves every few seconds is enough), and the end of the job is announced at once. An
interaction token dies after 15 minutes (or when the user dismisses the message), so the end of
a job is delivered through :class:`Courier` when the token no longer works: a DM, or, with DMs
closed, a message in the channel where /teach was used. A job that ends without a watcher
here (taught before a restart) is announced by DM too.
"""

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable

import discord

from bot.discord import rendering
from bot.discord.ports import BotServices
from bot.discord.views import cancel_view
from bot.services.api import JobUpdate

log = logging.getLogger(__name__)

DEFAULT_EDIT_INTERVAL_SECONDS = 3.0
# How many unwatched jobs' latest update to remember (a watch may begin just after its first
# events arrive) and how many announced jobs to remember (so a replayed event is not re-sent).
UNWATCHED_MEMORY = 256
ANNOUNCED_MEMORY = 1024
# Discord answers these for a dead interaction token or a dismissed ephemeral message.
_DEAD_TOKEN_CODES = frozenset({10008, 10015, 10062, 50027})


def token_is_dead(error: discord.HTTPException) -> bool:
    return error.status in (401, 404) or error.code in _DEAD_TOKEN_CODES


class Courier:
    """Delivers a message to a user outside any interaction: by DM, else in ``channel_id``."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def deliver(self, user_id: int, text: str, *, channel_id: int | None = None) -> bool:
        """Returns whether the message went out (failures are logged, never raised)."""
        try:
            user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            await user.send(text)
            return True
        except discord.HTTPException as failure:
            log.info("could not DM user %s (%s); trying the channel", user_id, failure)
        if channel_id is None:
            return False
        channel = self.client.get_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            return False
        try:
            await channel.send(
                f"<@{user_id}> {text}",
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(user_id)]),
            )
            return True
        except discord.HTTPException as failure:
            log.warning("could not tell user %s that their job ended: %s", user_id, failure)
            return False


class TrainingMessage:
    """One /teach reply, edited from the job's updates until the job ends."""

    def __init__(
        self,
        *,
        job_id: int,
        owner_id: int,
        header: str,
        interaction: discord.Interaction,
        courier: Courier,
        edit_interval_seconds: float,
    ) -> None:
        self.job_id = job_id
        self.owner_id = owner_id
        self.header = header
        self.interaction = interaction
        self.courier = courier
        self.edit_interval_seconds = edit_interval_seconds
        self.token_alive = True
        #: Set when the end of the job was already delivered elsewhere (only the edit remains).
        self.announced = False
        #: Set when the user pressed Cancel: progress is no longer shown, only the end.
        self.cancel_requested = False
        self._latest: JobUpdate | None = None
        self._changed = asyncio.Event()
        self._ended = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"training-message-{job_id}")

    def push(self, update: JobUpdate) -> None:
        """Show ``update`` (the newest wins when several arrive within one interval)."""
        self._latest = update
        self._changed.set()
        if rendering.is_terminal(update):
            self._ended.set()

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            update = self._latest
            if update is None:
                continue
            if rendering.is_terminal(update):
                await self._finish(update)
                return
            if self.cancel_requested:
                continue
            await self._call(
                self.interaction.edit_original_response(
                    content=rendering.job_update(update, self.header), view=cancel_view(self.job_id)
                )
            )
            # Throttle, but let the end of the job through at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), self.edit_interval_seconds)

    async def _finish(self, update: JobUpdate) -> None:
        text = rendering.job_update(update)
        await self._call(self.interaction.edit_original_response(content=text, view=None))
        if self.announced:
            return
        # A new message notifies; an edit of an old one does not.
        announced = await self._call(self.interaction.followup.send(text, ephemeral=True))
        if not announced:
            channel_id = self.interaction.channel_id if self.interaction.guild_id is not None else None
            await self.courier.deliver(self.owner_id, text, channel_id=channel_id)

    async def _call(self, request: Awaitable[object]) -> bool:
        """Run one request with the interaction token; False (and no request) once it is dead."""
        if not self.token_alive or self.interaction.is_expired():
            self.token_alive = False
            if asyncio.iscoroutine(request):
                request.close()
            return False
        try:
            await request
            return True
        except discord.HTTPException as failure:
            if token_is_dead(failure):
                log.info("job %s: interaction token no longer usable (%s)", self.job_id, failure)
                self.token_alive = False
            else:
                log.warning("job %s: could not update the training message: %s", self.job_id, failure)
            return False


class TrainingMessages:
    """Routes the services' job updates to the /teach replies that watch them."""

    def __init__(
        self,
        services: BotServices,
        courier: Courier,
        *,
        edit_interval_seconds: float = DEFAULT_EDIT_INTERVAL_SECONDS,
    ) -> None:
        self.services = services
        self.courier = courier
        self.edit_interval_seconds = edit_interval_seconds
        self._watched: dict[int, TrainingMessage] = {}
        self._unwatched: OrderedDict[int, JobUpdate] = OrderedDict()
        self._announced: deque[int] = deque(maxlen=ANNOUNCED_MEMORY)
        self._deliveries: set[asyncio.Task[bool]] = set()
        self._queue: asyncio.Queue[JobUpdate] | None = None
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe to the services' updates (call from a running event loop)."""
        if self._pump is None:
            self._queue = self.services.subscribe()
            self._pump = asyncio.create_task(self._read_updates(), name="job-updates")

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._queue is not None:
            self.services.unsubscribe(self._queue)
            self._queue = None
        tasks = [message.task for message in self._watched.values()] + list(self._deliveries)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watched.clear()

    def watch(self, *, job_id: int, owner_id: int, header: str, interaction: discord.Interaction) -> None:
        """Keep ``interaction``'s reply current for ``job_id`` (an update that arrived before
        the watch began is shown at once)."""
        message = TrainingMessage(
            job_id=job_id,
            owner_id=owner_id,
            header=header,
            interaction=interaction,
            courier=self.courier,
            edit_interval_seconds=self.edit_interval_seconds,
        )
        previous = self._watched.get(job_id)
        if previous is not None:  # the services handed back a job already being watched
            previous.task.cancel()
        self._watched[job_id] = message
        message.task.add_done_callback(lambda _: self._forget(job_id, message))
        early = self._unwatched.pop(job_id, None)
        if early is not None:
            message.announced = early.job_id in self._announced
            message.push(early)

    def cancelling(self, job_id: int) -> None:
        """The user cancelled ``job_id``: stop showing its progress until it ends."""
        message = self._watched.get(job_id)
        if message is not None:
            message.cancel_requested = True

    def watching(self, job_id: int) -> bool:
        return job_id in self._watched

    def _forget(self, job_id: int, message: TrainingMessage) -> None:
        if self._watched.get(job_id) is message:
            del self._watched[job_id]

    async def _read_updates(self) -> None:
        assert self._queue is not None
        while True:
            update = await self._queue.get()
            try:
                self._route(update)
            except Exception:
                log.exception("could not route job update %s", update)

    def _route(self, update: JobUpdate) -> None:
        message = self._watched.get(update.job_id)
        if message is not None:
            message.push(update)
            if rendering.is_terminal(update):
                self._announced.append(update.job_id)
            return
        self._unwatched[update.job_id] = update
        self._unwatched.move_to_end(update.job_id)
        while len(self._unwatched) > UNWATCHED_MEMORY:
            self._unwatched.popitem(last=False)
        if rendering.is_terminal(update) and update.job_id not in self._announced:
            self._announced.append(update.job_id)
            delivery = asyncio.create_task(
                self.courier.deliver(update.owner_id, rendering.job_update(update)),
                name=f"announce-job-{update.job_id}",
            )
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
