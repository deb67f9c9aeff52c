"""The lab's Slack: a loopback server answering the Slack Web API methods the platform uses, as Slack does.

Slack's servers cannot exist offline, so this stands in for them and speaks their protocol: Alertmanager's
Slack notifier posts to ``chat.postMessage`` with a bot token, and the suite reads the channel back with
slack-sdk's ``WebClient`` (``conversations.list``, ``conversations.history``), the same client code that
runs against a real workspace. Answers follow https://api.slack.com/methods: HTTP 200 with
``{"ok": false, "error": ...}`` for API errors (``not_authed``, ``invalid_auth``, ``channel_not_found``,
``no_text``, ``invalid_arguments``), newest message first in history, ``ts`` strings that order messages.

python -m provisioning.lab.services.slack --port P --token-file F --channel boutique-alerts [--channel ...]
"""

from __future__ import annotations

import argparse
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TEAM = {"team": "boutique-lab", "team_id": "T0LAB00001", "url": "http://127.0.0.1/"}
BOT = {"user": "alertmanager", "user_id": "U0LAB00001", "bot_id": "B0LAB00001"}


@dataclass
class Workspace:
    """Channels and their messages, kept in memory for the receiver's lifetime."""

    token: str
    channels: dict[str, str]  # id -> name
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_ts: float = 0.0

    def channel_id(self, ref: str) -> str | None:
        """chat.postMessage takes a name ("#x" or "x") or an ID; conversations.history only an ID."""
        if ref in self.channels:
            return ref
        name = ref.lstrip("#")
        return next((cid for cid, n in self.channels.items() if n == name), None)

    def post(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            # Slack's ts is "<epoch seconds>.<6 digits>", unique per channel and increasing.
            self.last_ts = max(time.time(), self.last_ts + 0.000001)
            ts = f"{self.last_ts:.6f}"
            stored = {"type": "message", "ts": ts, **BOT, **message}
            self.messages.setdefault(channel, []).append(stored)
        return stored

    def history(self, channel: str, oldest: float, latest: float, limit: int) -> list[dict[str, Any]]:
        with self.lock:
            found = [m for m in self.messages.get(channel, []) if oldest < float(m["ts"]) <= latest]
        return list(reversed(found))[:limit]


def _channel_record(cid: str, name: str) -> dict[str, Any]:
    return {"id": cid, "name": name, "is_channel": True, "is_private": False, "is_archived": False}


class SlackApi(BaseHTTPRequestHandler):
    workspace: Workspace  # set on the subclass that serve() builds

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines would carry query strings; the lab's log stays free of tokens

    def _params(self) -> tuple[dict[str, Any], str | None]:
        url = urlsplit(self.path)
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if body and ctype == "application/json":
            params.update(json.loads(body))
        elif body:
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.startswith("Bearer ") else params.pop("token", None)
        return params, token

    def _dispatch(self) -> None:
        method = urlsplit(self.path).path.removeprefix("/api/")
        handler = METHODS.get(method)
        if handler is None:
            self._answer({"ok": False, "error": "unknown_method"}, status=404)
            return
        try:
            params, token = self._params()
        except ValueError:
            self._answer({"ok": False, "error": "invalid_json"})
            return
        if not token:
            self._answer({"ok": False, "error": "not_authed"})
        elif not hmac.compare_digest(token, self.workspace.token):
            self._answer({"ok": False, "error": "invalid_auth"})
        else:
            self._answer(handler(self.workspace, params))

    def _answer(self, body: dict[str, Any], status: int = 200) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def auth_test(ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, **TEAM, **BOT}


def post_message(ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
    cid = ws.channel_id(str(params.get("channel") or ""))
    if cid is None:
        return {"ok": False, "error": "channel_not_found"}
    attachments = params.get("attachments") or []
    if isinstance(attachments, str):  # form-encoded clients send JSON text
        attachments = json.loads(attachments)
    text = params.get("text") or ""
    if not text and not attachments and not params.get("blocks"):
        return {"ok": False, "error": "no_text"}
    message = {"text": text, "attachments": attachments}
    if params.get("username"):
        message["username"] = params["username"]
    stored = ws.post(cid, message)
    return {"ok": True, "channel": cid, "ts": stored["ts"], "message": stored}


def conversations_list(ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
    channels = [_channel_record(cid, name) for cid, name in sorted(ws.channels.items())]
    return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}


def conversations_history(ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
    cid = str(params.get("channel") or "")
    if cid not in ws.channels:
        return {"ok": False, "error": "channel_not_found"}
    try:
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or time.time() + 1)
        limit = int(params.get("limit") or 100)
    except ValueError:
        return {"ok": False, "error": "invalid_arguments"}
    messages = ws.history(cid, oldest, latest, max(1, min(limit, 999)))
    return {
        "ok": True,
        "messages": messages,
        "has_more": False,
        "pin_count": 0,
        "response_metadata": {"next_cursor": ""},
    }


METHODS = {
    "auth.test": auth_test,
    "chat.postMessage": post_message,
    "conversations.list": conversations_list,
    "conversations.history": conversations_history,
}


def channel_ids(names: list[str]) -> dict[str, str]:
    """Stable IDs in Slack's shape (C + 10 upper-case alphanumerics)."""
    return {f"C0LAB{i:05d}": name.lstrip("#") for i, name in enumerate(sorted(set(names)), start=1)}


def serve(port: int, token: str, channels: list[str], host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("LabSlackApi", (SlackApi,), {"workspace": Workspace(token, channel_ids(channels))})
    return ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--channel", action="append", required=True)
    args = parser.parse_args(argv)
    server = serve(args.port, args.token_file.read_text().strip(), args.channel)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
