"""Reading the alert channel through Slack's Web API with slack-sdk: the same calls against a real
workspace (bot token with channels:read + channels:history) and against the lab's receiver."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from boutique_suite.run import waits
from boutique_suite.run.targets import Target


class SlackUnavailable(Exception):
    """The channel cannot be read; the message names Slack's error and the fix."""


FIXES = {
    "not_authed": "no token was sent",
    "invalid_auth": "the bot token is wrong or revoked: check what the target's slack.token_* names",
    "missing_scope": "the bot token lacks channels:read or channels:history",
    "channel_not_found": "the channel does not exist or the bot is not a member (invite it)",
}


def message_text(message: dict[str, Any]) -> str:
    """Everything a person would read in the message: text, and each attachment's title, text, fields."""
    parts = [message.get("text") or ""]
    for att in message.get("attachments") or []:
        parts += [att.get("pretext") or "", att.get("title") or "", att.get("text") or ""]
        parts += [f"{f.get('title', '')} {f.get('value', '')}" for f in att.get("fields") or []]
    return "\n".join(p for p in parts if p)


@dataclass
class Channel:
    client: WebClient
    name: str
    id: str

    @classmethod
    def open(cls, target: Target, channel: str | None = None) -> Channel:
        client = WebClient(token=target.slack.token(), base_url=target.slack.api_url, timeout=10)
        name = (channel or target.slack.channel).lstrip("#")
        try:
            for page in client.conversations_list(types="public_channel,private_channel", limit=200):
                for channel in page["channels"]:
                    if channel["name"] == name:
                        return cls(client, name, channel["id"])
        except SlackApiError as exc:
            raise SlackUnavailable(_explain(exc)) from None
        except OSError as exc:
            raise SlackUnavailable(f"cannot reach Slack's API at {target.slack.api_url}: {exc}") from None
        raise SlackUnavailable(f"#{name}: {FIXES['channel_not_found']}")

    def messages_since(self, oldest: float) -> list[dict[str, Any]]:
        """Newest first, like conversations.history."""
        try:
            found: list[dict[str, Any]] = []
            for page in self.client.conversations_history(channel=self.id, oldest=f"{oldest:.6f}", limit=200):
                found += page["messages"]
            return found
        except SlackApiError as exc:
            raise SlackUnavailable(_explain(exc)) from None

    def post(self, text: str) -> str:
        """The suite's own message (the nightly summary); the platform's alerts go through Alertmanager."""
        return self.client.chat_postMessage(channel=self.id, text=text)["ts"]


def _explain(exc: SlackApiError) -> str:
    error = exc.response.get("error", "unknown_error") if exc.response is not None else "no answer"
    return f"Slack API error {error}: {FIXES.get(error, 'see https://api.slack.com/methods')}"


def has_message(channel: Channel, since: float, *needles: str) -> waits.Probe:
    """Succeeds with the first message (oldest first) sent after ``since`` that contains every needle."""

    def probe() -> waits.Check:
        for message in reversed(channel.messages_since(since)):
            text = message_text(message)
            if all(n in text for n in needles):
                return waits.succeeded(f"message at {message['ts']}", message)
        return waits.pending(f"no message in #{channel.name} with {', '.join(map(repr, needles))} yet")

    return probe


def wait_for_message(channel: Channel, since: float, needles: tuple[str, ...], timeout: float) -> dict:
    waited = waits.until(
        has_message(channel, since, *needles),
        timeout=timeout,
        interval=2,
        what=f"a message in #{channel.name} naming {', '.join(needles)}",
    )
    return {"message": waited.check.value, "seconds": waited.seconds, "received_at": time.time()}
