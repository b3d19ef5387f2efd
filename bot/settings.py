"""Configuration from the environment (and an optional ``.env`` file), read once at the edge.

Two layers: :class:`CoreSettings` is what the services and a GPU worker need (model, data
directory, database, device, negative bank); :class:`BotSettings` adds what only the Discord
process needs (the token, a development guild, operator ids). Nothing is read at import time:
call :func:`load_bot_settings` / :func:`load_core_settings` from the composition root. Every
problem comes back as one :class:`SettingsError` whose message names the environment variable.

Example ``.env``::

    DISCORD_TOKEN=MTIz...                 # from the Discord developer portal, Bot tab
    YOLLAVA_MODEL=toyworld                # runs anywhere; default llava-hf/llava-1.5-7b-hf
    YOLLAVA_DATA_DIR=/var/lib/yollava
    YOLLAVA_OPERATOR_IDS=123456789012345678,234567890123456789
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "llava-hf/llava-1.5-7b-hf"
DEFAULT_DATA_DIR = Path("data")
DATABASE_FILE_NAME = "yollava.sqlite3"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32")

# Values people leave in by mistake when copying an example file. A real token is three
# base64url segments, so it never looks like these.
_PLACEHOLDER_TOKEN = re.compile(
    r"<.*>|your\W?.*|.*token\W?here.*|change\W?me|placeholder|todo|none|null|token|x+|\.+|\*+",
    re.IGNORECASE,
)


class SettingsError(Exception):
    """The configuration is unusable; the message has one line per problem, each naming its
    environment variable and what to do."""


class CoreSettings(BaseSettings):
    """What the services and a training worker need."""

    model_config = SettingsConfigDict(
        env_prefix="YOLLAVA_",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    #: Hub id or local directory of a LLaVA checkpoint, or ``toyworld`` (small, runs on a CPU).
    model: str = DEFAULT_MODEL
    #: Photos, subject tensors, the SQLite database and caches live under here.
    data_dir: Path = DEFAULT_DATA_DIR
    #: SQLAlchemy URL; empty means SQLite in the data directory.
    database_url: str = ""
    #: Folder of generic photos to mine hard negatives from; empty means none (or the toy
    #: world's own bank for ``YOLLAVA_MODEL=toyworld``).
    negatives: Path | None = None
    #: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    device: str = "auto"
    #: ``auto`` is bfloat16 where the device computes it natively, else float32; fp16 only on a GPU.
    dtype: str = "auto"
    #: A worker already listening (e.g. ``http://worker:8765`` in compose); empty means the bot
    #: starts and supervises its own local worker process.
    worker_url: str = ""
    #: Shared secret between the bot and a worker at ``worker_url`` (the worker reads the same
    #: variable). A local worker gets a fresh random one.
    worker_token: SecretStr | None = None
    log_level: str = "INFO"

    @field_validator("model")
    @classmethod
    def _model_is_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError(f"must name a model, e.g. {DEFAULT_MODEL} or toyworld")
        return value

    @field_validator("negatives", mode="before")
    @classmethod
    def _empty_negatives_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("worker_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("worker_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        value = value.strip().lower()
        if value in DEVICE_CHOICES or value.startswith("cuda:"):
            return value
        raise ValueError(f"must be one of {', '.join(DEVICE_CHOICES)} or cuda:N, got {value!r}")

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in DTYPE_CHOICES:
            raise ValueError(f"must be one of {', '.join(DTYPE_CHOICES)}, got {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
        return value

    @property
    def resolved_database_url(self) -> str:
        """``database_url``, or SQLite in the data directory when it is empty."""
        if self.database_url.strip():
            return self.database_url.strip()
        return f"sqlite:///{(self.data_dir / DATABASE_FILE_NAME).resolve()}"


class BotSettings(CoreSettings):
    """Everything :class:`CoreSettings` has, plus the Discord process's own settings."""

    #: The bot token (Developer Portal → your application → Bot → Reset Token).
    discord_token: SecretStr = Field(validation_alias="DISCORD_TOKEN")
    #: Sync slash commands to this guild only (instant, for development); unset = globally.
    dev_guild_id: int | None = None
    #: Discord user ids who see the whole queue and the worker's health in /status.
    operator_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    #: Least time between two edits of a progress message (Discord rate-limits edits).
    progress_edit_seconds: float = Field(default=3.0, ge=0.0)

    @field_validator("discord_token")
    @classmethod
    def _real_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError("is empty: paste the bot token from the Discord developer portal")
        if _PLACEHOLDER_TOKEN.fullmatch(token):
            raise ValueError(
                "still holds the example placeholder: paste the bot token from the Discord "
                "developer portal (your application → Bot → Reset Token)"
            )
        if any(ch.isspace() for ch in token):
            raise ValueError("contains spaces; a Discord bot token is one word")
        return SecretStr(token)

    @field_validator("dev_guild_id", mode="before")
    @classmethod
    def _empty_guild_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("operator_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part for part in value.replace(";", ",").replace(" ", ",").split(",") if part]
            bad = [part for part in parts if not part.isdigit()]
            if bad:
                raise ValueError(f"must be Discord user ids separated by commas; not an id: {bad[0]!r}")
            return frozenset(int(part) for part in parts)
        return value


def _explain(error: ValidationError, prefix: str) -> SettingsError:
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else "?"
        variable = "DISCORD_TOKEN" if field in ("discord_token", "DISCORD_TOKEN") else prefix + field.upper()
        if problem["type"] == "missing":
            message = "is not set"
            if variable == "DISCORD_TOKEN":
                message += (
                    ": create a bot in the Discord developer portal and put its token in the "
                    "environment or the .env file (see deploy/.env.example)"
                )
        else:
            message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"{variable} {message}")
    return SettingsError("invalid configuration:\n  " + "\n  ".join(lines))


def _load(cls: type[CoreSettings], env_file: Path | None, overrides: Mapping[str, Any]) -> Any:
    try:
        return cls(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as error:
        raise _explain(error, "YOLLAVA_") from None


def load_core_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> CoreSettings:
    """Read :class:`CoreSettings` from the environment and ``env_file`` (if it exists)."""
    settings: CoreSettings = _load(CoreSettings, env_file, overrides)
    return settings


def load_bot_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> BotSettings:
    """Read :class:`BotSettings`; raises :class:`SettingsError` naming each bad variable."""
    settings: BotSettings = _load(BotSettings, env_file, overrides)
    return settings
