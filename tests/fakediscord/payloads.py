"""Discord API v10 payload builders for the fake Discord server.

Only what discord.py 2.7 reads is filled in, with the shapes Discord documents.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000
ALL_PERMISSIONS = str((1 << 53) - 1)
DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# Channel types
GUILD_TEXT = 0
DM = 1

# Interaction types
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
APPLICATION_COMMAND_AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Interaction callback types
CALLBACK_PONG = 1
CALLBACK_CHANNEL_MESSAGE = 4
CALLBACK_DEFERRED_CHANNEL_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE_MESSAGE = 6
CALLBACK_UPDATE_MESSAGE = 7
CALLBACK_AUTOCOMPLETE_RESULT = 8
CALLBACK_MODAL = 9

# Message flags
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Application command option types
OPT_SUB_COMMAND = 1
OPT_SUB_COMMAND_GROUP = 2
OPT_STRING = 3
OPT_INTEGER = 4
OPT_BOOLEAN = 5
OPT_USER = 6
OPT_CHANNEL = 7
OPT_ROLE = 8
OPT_MENTIONABLE = 9
OPT_NUMBER = 10
OPT_ATTACHMENT = 11

# Gateway intents the fake looks at
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12


class SnowflakeFactory:
    """Generates increasing, realistic snowflakes (as strings, like the API)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._counter) & 0x3FFFFF))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def new_token() -> str:
    return "fake-ix-" + secrets.token_urlsafe(24)


@dataclass
class FakeUser:
    """A Discord user known to the fake (the bot itself or a test user)."""

    id: str
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None
    #: When False, messages to this user's DM channel fail with 403 / code 50007,
    #: as when a user has closed their DMs.
    dms_open: bool = True
    locale: str = "en-US"
    roles: list[str] = field(default_factory=list)

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def to_dict(self) -> JSON:
        data: JSON = {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }
        if self.bot:
            data["bot"] = True
        return data

    def member_dict(self, *, with_user: bool = True, permissions: str | None = None) -> JSON:
        data: JSON = {
            "roles": list(self.roles),
            "nick": None,
            "avatar": None,
            "joined_at": "2025-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.to_dict()
        if permissions is not None:
            data["permissions"] = permissions
        return data


@dataclass
class FakeGuild:
    id: str
    name: str
    owner_id: str
    channels: list[JSON] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    locale: str = "en-US"

    def everyone_role(self) -> JSON:
        return {
            "id": self.id,
            "name": "@everyone",
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 0,
            "permissions": "1071698660929",
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def partial_dict(self) -> JSON:
        """The `guild` object inside an interaction payload."""
        return {"id": self.id, "locale": self.locale, "features": []}


def application_dict(app_id: str, owner: FakeUser, name: str) -> JSON:
    return {
        "id": app_id,
        "name": name,
        "icon": None,
        "description": "fake application",
        "summary": "",
        "type": None,
        "hook": True,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": owner.to_dict(),
        "flags": 0,
        "team": None,
        "rpc_origins": [],
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "approximate_guild_count": 1,
        "integration_types_config": {"0": {}, "1": {}},
    }


def text_channel_dict(channel_id: str, guild_id: str, name: str, position: int = 0) -> JSON:
    return {
        "id": channel_id,
        "type": GUILD_TEXT,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def dm_channel_dict(channel_id: str, recipient: FakeUser) -> JSON:
    return {
        "id": channel_id,
        "type": DM,
        "last_message_id": None,
        "recipients": [recipient.to_dict()],
        "flags": 0,
    }


def guild_create_dict(guild: FakeGuild, members: list[FakeUser]) -> JSON:
    """GUILD_CREATE with ``members`` (Discord sends every member of a small guild only with
    the presences intent; otherwise just the bot, and discord.py chunks with op 8)."""
    channels = []
    for ch in guild.channels:
        c = dict(ch)
        c.pop("guild_id", None)  # GUILD_CREATE omits guild_id on channels
        channels.append(c)
    return {
        "id": guild.id,
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": guild.owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [guild.everyone_role()],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": guild.locale,
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "joined_at": "2025-01-01T00:00:00+00:00",
        "large": False,
        "unavailable": False,
        "member_count": len(guild.member_ids),
        "voice_states": [],
        "members": [m.member_dict() for m in members],
        "channels": channels,
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def attachment_dict(
    attachment_id: str,
    filename: str,
    size: int,
    url: str,
    content_type: str | None,
    *,
    width: int | None = None,
    height: int | None = None,
    ephemeral: bool = False,
) -> JSON:
    data: JSON = {
        "id": attachment_id,
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
        "flags": 0,
    }
    if content_type is not None:
        data["content_type"] = content_type
    if width is not None and height is not None:
        data["width"] = width
        data["height"] = height
    if ephemeral:
        data["ephemeral"] = True
    return data


def message_dict(
    message_id: str,
    channel_id: str,
    author: FakeUser,
    *,
    content: str = "",
    guild_id: str | None = None,
    message_type: int = 0,
    flags: int = 0,
    embeds: list[JSON] | None = None,
    components: list[JSON] | None = None,
    attachments: list[JSON] | None = None,
    webhook_id: str | None = None,
    application_id: str | None = None,
    interaction_metadata: JSON | None = None,
    message_reference: JSON | None = None,
    mentions: list[JSON] | None = None,
    member: JSON | None = None,
) -> JSON:
    data: JSON = {
        "id": message_id,
        "type": message_type,
        "channel_id": channel_id,
        "author": author.to_dict(),
        "content": content,
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": mentions or [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": embeds or [],
        "components": components or [],
        "pinned": False,
        "flags": flags,
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
    if member is not None:
        data["member"] = member
    if webhook_id is not None:
        data["webhook_id"] = webhook_id
    if application_id is not None:
        data["application_id"] = application_id
    if interaction_metadata is not None:
        data["interaction_metadata"] = interaction_metadata
    if message_reference is not None:
        data["message_reference"] = message_reference
    return data
