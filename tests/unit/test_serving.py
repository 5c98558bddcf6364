"""`featurepipe serve`'s layer over Feast's app: users without a row get the no-history values (SPEC §4)."""

from __future__ import annotations

import json

from featurepipe.serving import NoHistoryValues, fill_no_history


ROW = "2025-03-31T00:00:00Z"
NO_ROW = "1970-01-01T00:00:00Z"


def _response(names: list[str], columns: list[tuple[list, list[str]]], stamps: list[str] | None = None) -> dict:
    return {"metadata": {"feature_names": names},
            "results": [{"values": values, "statuses": statuses, "event_timestamps": stamps or [ROW] * len(values)}
                        for values, statuses in columns]}


def test_not_found_stored_features_get_the_no_history_values_and_keep_their_status() -> None:
    body = _response(
        ["user_id", "transactions_7d", "avg_basket_size_30d", "favorite_category", "amount_vs_avg_basket_30d"],
        [(["u1", "u2"], ["PRESENT", "PRESENT"]),
         ([3, None], ["PRESENT", "NOT_FOUND"]),
         ([12.5, None], ["PRESENT", "NOT_FOUND"]),
         ([None, None], ["NULL_VALUE", "NOT_FOUND"]),
         ([1.5, None], ["PRESENT", "PRESENT"])],  # on demand: null is its value (a zero or unknown average)
    )
    filled = fill_no_history(body)
    assert [r["values"] for r in filled["results"]] == [["u1", "u2"], [3, 0], [12.5, 0.0], [None, None], [1.5, None]]
    assert filled["results"][1]["statuses"] == ["PRESENT", "NOT_FOUND"]


def test_redis_answers_a_missing_key_with_present_nulls_at_the_epoch_and_those_are_filled() -> None:
    body = _response(["user_id", "transactions_7d", "max_purchase_90d"],
                     [(["u1", "u2"], ["PRESENT", "PRESENT"]), ([None, 4], ["PRESENT", "PRESENT"]), ([None, 9.5], ["PRESENT", "PRESENT"])],
                     stamps=[NO_ROW, ROW])
    filled = fill_no_history(body)
    assert [r["values"] for r in filled["results"]] == [["u1", "u2"], [0, 4], [0.0, 9.5]]


def test_full_feature_names_are_filled_too() -> None:
    body = _response(["user_id", "user_purchase_features__total_spent_7d", "other_view__total_spent_7d"],
                     [(["u2"], ["PRESENT"]), ([None], ["NOT_FOUND"]), ([None], ["NOT_FOUND"])])
    assert [r["values"] for r in fill_no_history(body)["results"]] == [["u2"], [0.0], [None]]


async def _call(app, path: str) -> tuple[dict, bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "path": path}, receive, send)
    return sent[0], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_middleware_rewrites_only_successful_online_reads_with_a_fresh_length() -> None:
    import asyncio

    payload = json.dumps(_response(["user_id", "transactions_7d"], [(["u2"], ["PRESENT"]), ([None], ["NOT_FOUND"])])).encode()

    def feast_app(status: int):
        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
            half = len(payload) // 2  # a body in two chunks
            await send({"type": "http.response.body", "body": payload[:half], "more_body": True})
            await send({"type": "http.response.body", "body": payload[half:]})
        return app

    start, body = asyncio.run(_call(NoHistoryValues(feast_app(200)), "/get-online-features"))
    assert json.loads(body)["results"][1]["values"] == [0]
    assert dict(start["headers"])[b"content-length"] == str(len(body)).encode()
    for status, path in [(500, "/get-online-features"), (200, "/health")]:
        _, body = asyncio.run(_call(NoHistoryValues(feast_app(status)), path))
        assert body == payload
