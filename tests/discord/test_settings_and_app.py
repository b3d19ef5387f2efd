"""Settings from the environment, and the composition root's start, stop and refusals."""

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bot import app
from bot.discord.client import YollavaBot
from bot.settings import BotSettings, SettingsError, load_bot_settings, load_core_settings
from tests.discord.fake_services import FakeServices
from tests.fakediscord import FakeDiscord

VALID_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("YOLLAVA_") or name == "DISCORD_TOKEN":
            monkeypatch.delenv(name)


def test_defaults_and_database_under_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("YOLLAVA_DATA_DIR", str(tmp_path / "data"))
    settings = load_bot_settings(None)
    assert settings.model == "llava-hf/llava-1.5-7b-hf"
    assert settings.discord_token.get_secret_value() == VALID_TOKEN
    assert VALID_TOKEN not in repr(settings)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'yollava.sqlite3'}"
    assert settings.dev_guild_id is None and settings.operator_ids == frozenset()
    assert settings.negatives is None and settings.worker_url == ""


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DISCORD_TOKEN={VALID_TOKEN}\nYOLLAVA_MODEL=toyworld\n")
    monkeypatch.setenv("YOLLAVA_DEV_GUILD_ID", "1234")
    monkeypatch.setenv("YOLLAVA_OPERATOR_IDS", "11, 22;33")
    monkeypatch.setenv("YOLLAVA_NEGATIVES", str(tmp_path))
    monkeypatch.setenv("YOLLAVA_DEVICE", "CUDA:1")
    monkeypatch.setenv("YOLLAVA_DATABASE_URL", "postgresql+psycopg://bot@db/yollava")
    monkeypatch.setenv("YOLLAVA_WORKER_URL", "http://worker:8765/")
    settings = load_bot_settings(env_file)
    assert settings.model == "toyworld"
    assert settings.dev_guild_id == 1234 and settings.operator_ids == {11, 22, 33}
    assert settings.negatives == tmp_path and settings.device == "cuda:1"
    assert settings.resolved_database_url == "postgresql+psycopg://bot@db/yollava"
    assert settings.worker_url == "http://worker:8765"
    core = load_core_settings(env_file)  # the worker's view needs no token
    assert core.model == "toyworld"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "DISCORD_TOKEN is not set: create a bot in the Discord developer portal"),
        ({"DISCORD_TOKEN": "your-token-here"}, "DISCORD_TOKEN still holds the example placeholder"),
        ({"DISCORD_TOKEN": "<paste token>"}, "DISCORD_TOKEN still holds the example placeholder"),
        ({"DISCORD_TOKEN": "   "}, "DISCORD_TOKEN is empty"),
        ({"DISCORD_TOKEN": VALID_TOKEN, "YOLLAVA_OPERATOR_IDS": "alice"}, "YOLLAVA_OPERATOR_IDS must be"),
        ({"DISCORD_TOKEN": VALID_TOKEN, "YOLLAVA_DEV_GUILD_ID": "guild"}, "YOLLAVA_DEV_GUILD_ID"),
        ({"DISCORD_TOKEN": VALID_TOKEN, "YOLLAVA_DEVICE": "tpu"}, "YOLLAVA_DEVICE must be one of"),
        ({"DISCORD_TOKEN": VALID_TOKEN, "YOLLAVA_WORKER_URL": "worker:1"}, "YOLLAVA_WORKER_URL must be"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_bot_settings(None)
    assert expected in str(error.value)
    assert VALID_TOKEN not in str(error.value)


def test_run_refuses_a_placeholder_token_with_exit_status_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=your-token-here\n")
    assert app.run(["--env-file", str(env_file)]) == app.EXIT_CONFIG
    assert "DISCORD_TOKEN still holds the example placeholder" in capsys.readouterr().err

    monkeypatch.setenv("DISCORD_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("YOLLAVA_NEGATIVES", str(tmp_path / "missing"))
    assert app.run(["--env-file", str(tmp_path / "none")]) == app.EXIT_CONFIG
    assert "YOLLAVA_NEGATIVES names" in capsys.readouterr().err


def test_negative_bank_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", VALID_TOKEN)
    assert app.negative_bank_warning(load_bot_settings(None)) == app.NO_NEGATIVE_BANK
    monkeypatch.setenv("YOLLAVA_NEGATIVES", str(tmp_path))
    assert app.negative_bank_warning(load_bot_settings(None)) is None


async def test_serve_runs_until_sigterm_and_closes_everything(fake_discord: FakeDiscord) -> None:
    settings = BotSettings(discord_token=fake_discord.token, _env_file=None)  # type: ignore[call-arg]
    services = FakeServices()
    bot = YollavaBot(services)
    bot._connection.guild_ready_timeout = 0.05  # as run_bot does: no 2 s wait for guild chunks
    serving = asyncio.create_task(app.serve(settings, services, bot))  # type: ignore[arg-type]
    for _ in range(500):
        if bot.is_ready():
            break
        await asyncio.sleep(0.01)
    assert bot.is_ready() and [name for name, _ in services.calls] == ["start"]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 10) == 0
    assert bot.is_closed() and services.calls[-1][0] == "close" and services.subscribers == 0


async def test_serve_reports_a_refused_token(fake_discord: FakeDiscord) -> None:
    settings = BotSettings(discord_token="MTIz.wrong.token", _env_file=None)  # type: ignore[call-arg]
    services = FakeServices()
    status = await app.serve(settings, services, YollavaBot(services))  # type: ignore[arg-type]
    assert status == app.EXIT_LOGIN and services.calls[-1][0] == "close"


def test_the_shipped_env_example_is_valid_but_for_its_placeholder_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / ".env.example"
    with pytest.raises(SettingsError) as error:
        load_bot_settings(example)
    assert str(error.value).count("\n") == 1 and "DISCORD_TOKEN still holds" in str(error.value)
    monkeypatch.setenv("DISCORD_TOKEN", VALID_TOKEN)
    settings = load_bot_settings(example)
    assert (
        settings.negatives is None and settings.operator_ids == frozenset() and settings.worker_token is None
    )
