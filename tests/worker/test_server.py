"""The worker's HTTP surface: token required, malformed requests refused, health reported."""

import aiohttp
import pytest

from bot.services.model_client import FixedEndpoint, HttpModelClient, WorkerRefused
from bot.worker.protocol import TOKEN_HEADER, AnswerRequest, SubjectRef
from tests.worker.conftest import TOKEN, InProcessWorker


async def test_requests_need_the_token(worker: InProcessWorker) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(worker.url + "/v1/health") as response:
            assert response.status == 401
        async with session.get(worker.url + "/v1/health", headers={TOKEN_HEADER: "wrong"}) as response:
            assert response.status == 401
        async with session.post(
            worker.url + "/v1/answer", data=b"{not json", headers={TOKEN_HEADER: TOKEN}
        ) as response:
            assert response.status == 400 and (await response.json())["error"] == "bad_request"


async def test_health_and_refusals_through_the_client(worker: InProcessWorker) -> None:
    client = HttpModelClient(FixedEndpoint(worker.url, TOKEN))
    try:
        health = await client.health()
        assert health is not None and health.worker_id == "in-process" and health.current_job_id is None
        missing = SubjectRef("s1", "Bo", "dog", artifact_path="subjects/00/00/none.safetensors")
        with pytest.raises(WorkerRefused) as refused:
            await client.answer(AnswerRequest(question="Who is Bo?", subjects=[missing]))
        assert refused.value.code == "artifact"
        escape = SubjectRef("s2", "Bo", "dog", artifact_path="../../etc/passwd")
        with pytest.raises(WorkerRefused) as refused:
            await client.answer(AnswerRequest(question="Who is Bo?", subjects=[escape]))
        assert refused.value.code == "artifact"
    finally:
        await client.close()
