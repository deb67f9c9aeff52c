"""The lab's Slack-compatible receiver, driven by slack-sdk's WebClient exactly as against slack.com."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from boutique_suite.clients import slack as slack_client
from provisioning.lab.services import slack

TOKEN = f"lab-{secrets.token_hex(8)}"  # made per run: no token-shaped literal in git
# slack-sdk warns about messages without top-level text: these tests send them on purpose (as Alertmanager).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:slack_sdk.web.internal_utils")


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    server = slack.serve(0, TOKEN, ["boutique-alerts", "other"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/"
    server.shutdown()


def client(api_url: str, token: str = TOKEN) -> WebClient:
    return WebClient(token=token, base_url=api_url, timeout=5)


def channel_id(api_url: str, name: str) -> str:
    channels = client(api_url).conversations_list()["channels"]
    return next(c["id"] for c in channels if c["name"] == name)


def error_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response["error"]


def test_wrong_token_is_invalid_auth_and_no_token_is_not_authed(api_url: str) -> None:
    assert error_of(lambda: client(api_url, "not-the-lab-token").auth_test()) == "invalid_auth"
    answer = requests.post(f"{api_url}auth.test", timeout=5).json()
    assert answer == {"ok": False, "error": "not_authed"}
    assert client(api_url).auth_test()["ok"] is True


def test_unknown_channel_is_channel_not_found(api_url: str) -> None:
    assert (
        error_of(lambda: client(api_url).chat_postMessage(channel="#nope", text="x")) == "channel_not_found"
    )
    # conversations.history takes an ID only, as on Slack.
    assert error_of(lambda: client(api_url).conversations_history(channel="boutique-alerts")) == (
        "channel_not_found"
    )


def test_a_message_without_text_or_attachments_is_refused(api_url: str) -> None:
    assert (
        error_of(lambda: client(api_url).chat_postMessage(channel="#boutique-alerts", text="")) == "no_text"
    )


def test_posted_messages_come_back_newest_first_after_oldest(api_url: str) -> None:
    web = client(api_url)
    before = time.time()
    first = web.chat_postMessage(channel="#boutique-alerts", text="first")
    second = web.chat_postMessage(
        channel=channel_id(api_url, "boutique-alerts"),
        attachments=[{"title": "[FIRING:1] BoutiquePodCrashLooping", "text": "pod=crash-probe-1"}],
    )
    assert float(first["ts"]) < float(second["ts"])
    history = web.conversations_history(channel=second["channel"], oldest=f"{before:.6f}")["messages"]
    assert [m["ts"] for m in history] == [second["ts"], first["ts"]]
    later = web.conversations_history(channel=second["channel"], oldest=first["ts"])["messages"]
    assert [m["ts"] for m in later] == [second["ts"]], "oldest is exclusive, as on Slack"
    assert "crash-probe-1" in slack_client.message_text(history[0])
    other = web.conversations_history(channel=channel_id(api_url, "other"), oldest=f"{before:.6f}")
    assert other["messages"] == []


def test_alertmanager_shaped_json_post_is_accepted(api_url: str) -> None:
    """Alertmanager's Slack notifier posts JSON with a Bearer token (http_config.authorization)."""
    body = {
        "channel": "#boutique-alerts",
        "username": "Alertmanager",
        "attachments": [{"title": "t", "text": "x"}],
    }
    answer = requests.post(
        f"{api_url}chat.postMessage", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    ).json()
    assert answer["ok"] is True and answer["message"]["username"] == "Alertmanager"
