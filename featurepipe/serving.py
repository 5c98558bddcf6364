"""`featurepipe serve`: Feast's HTTP feature server, with the no-history values of SPEC §4.

Feast's own app answers every request; one ASGI layer in front of it fills the stored features of
an entity the online store has no row for with the no-history values (0, 0.0, null), as
`featurepipe online` and training sets do. Status and timestamp stay Feast's (`NOT_FOUND` on
SQLite; on Redis `PRESENT` with the epoch as timestamp), so a service still sees that the user had
no row. Nothing of Feast is forked or patched.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from featurepipe.spec import USER_PURCHASE

if TYPE_CHECKING:
    from feast import FeatureStore

ONLINE_PATH = "/get-online-features"
NOT_FOUND = "NOT_FOUND"
# Feast's Redis store answers a missing key with status PRESENT, a null value and this timestamp
# (SQLite says NOT_FOUND); no feature row has it (as-of instants are after the epoch's first events)
NO_ROW_TIMESTAMP = "1970-01-01T00:00:00Z"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@functools.lru_cache(maxsize=1)
def _no_history_values() -> dict:
    from featurepipe.feast_store import no_history_values

    return no_history_values(USER_PURCHASE.feature_names)


def fill_no_history(body: dict) -> dict:
    """A `/get-online-features` response with each not-found stored feature's no-history value.

    Feature columns are named as asked: `name`, or `view__name` with full feature names."""
    defaults = _no_history_values()
    names = body.get("metadata", {}).get("feature_names", [])
    for name, result in zip(names, body.get("results", [])):
        view, _, short = name.rpartition("__")
        default = defaults.get(short if view in ("", USER_PURCHASE.name) else name)
        if default is None:
            continue
        result["values"] = [default if value is None and (status == NOT_FOUND or stamp == NO_ROW_TIMESTAMP) else value
                            for value, status, stamp in zip(result["values"], result["statuses"], result["event_timestamps"])]
    return body


class NoHistoryValues:
    """ASGI middleware: `fill_no_history` on successful `/get-online-features` responses."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != ONLINE_PATH:
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start["status"] == 200:
                body = json.dumps(fill_no_history(json.loads(body)), separators=(",", ":")).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffer)


def app(store: FeatureStore, registry_ttl_sec: int = 60) -> NoHistoryValues:
    """Feast's feature server app over `store`, behind `NoHistoryValues`."""
    from feast.feature_server import get_app
    from feast.permissions.server.utils import (
        ServerType,
        init_auth_manager,
        init_security_manager,
        str_to_auth_manager_type,
    )

    # what Feast's own `feast serve` sets up before its app (its default: no auth)
    auth_type = str_to_auth_manager_type(store.config.auth_config.type)
    init_security_manager(auth_type=auth_type, fs=store)
    init_auth_manager(auth_type=auth_type, server_type=ServerType.REST, auth_config=store.config.auth_config)
    return NoHistoryValues(get_app(store, registry_ttl_sec))


def serve(store: FeatureStore, host: str, port: int) -> None:
    """Serve until interrupted (one process; uvicorn, as Feast's server runs inside gunicorn)."""
    import uvicorn

    uvicorn.run(app(store), host=host, port=port, access_log=False, log_level="warning")
