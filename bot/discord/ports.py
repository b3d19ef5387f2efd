"""What the Discord layer needs from the services, as a structural type.

:class:`bot.services.api.Services` satisfies it; tests pass an in-memory double with the same
methods. Keeping the list here documents exactly which use-cases the front end calls.
"""

import asyncio
from collections.abc import Sequence
from typing import Protocol

from bot.services.api import (
    AskResult,
    ForgetResult,
    JobUpdate,
    PhotoUpload,
    RecognitionHit,
    StatusReport,
    SubjectSummary,
    TeachReceipt,
)


class BotServices(Protocol):
    async def teach(
        self,
        *,
        user_id: int,
        name: str,
        photos: Sequence[PhotoUpload],
        kind: str = "other",
        facts: str | None = None,
    ) -> TeachReceipt: ...

    async def ask(
        self, *, user_id: int, question: str, image: bytes | None = None, subject: str | None = None
    ) -> AskResult: ...

    async def recognize_all(self, *, user_id: int, image: bytes) -> list[RecognitionHit]: ...

    async def list_subjects(self, *, user_id: int) -> list[SubjectSummary]: ...

    async def subject_names(self, *, user_id: int, prefix: str = "", limit: int = 25) -> list[str]: ...

    async def forget(self, *, user_id: int, name: str) -> ForgetResult: ...

    async def cancel(self, *, user_id: int, job_id: int) -> bool: ...

    async def status(self, *, user_id: int, operator: bool = False) -> StatusReport: ...

    def subscribe(self) -> "asyncio.Queue[JobUpdate]": ...

    def unsubscribe(self, queue: "asyncio.Queue[JobUpdate]") -> None: ...
