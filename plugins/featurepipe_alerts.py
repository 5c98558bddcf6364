"""Alerts of the monitoring DAG: an Airflow notifier that sends a failed check's breaches to a webhook.

The URL comes from the environment variable named in `monitoring.toml` ([alerts] webhook_url_env,
default FEATUREPIPE_ALERT_WEBHOOK_URL), never from a committed file. Without one, the task log gets
one line per breach. A webhook that cannot be reached is logged, never raised: the task has failed
already and says why.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier


class BreachNotifier(BaseNotifier):
    """`on_failure_callback` of the monitoring task: POST {dag, run, as_of, breaches, report} as JSON."""

    def notify(self, context: Any) -> None:
        from featurepipe.monitor_config import load_config

        error = context.get("exception")
        pointer, summary = latest_report()
        payload = {
            "source": "featurepipe",
            "dag_id": context["dag"].dag_id if context.get("dag") else None,
            "run_id": str(context.get("run_id")),
            "as_of": summary.get("as_of"),
            "breaches": summary.get("breaches", []),
            "report": pointer.get("html"),
            "error": str(error).splitlines()[0] if error else None,
        }
        url = load_config().webhook_url
        lines = [f"{b['check']} {b['feature']}: {b['message']}" for b in payload["breaches"]] or [payload["error"] or "failed"]
        if not url:
            for line in lines:
                self.log.error("featurepipe monitoring breach (as-of %s): %s", payload["as_of"], line)
            self.log.error("no alert sent: set %s to a webhook URL to receive these", load_config().webhook_url_env)
            return
        send(url, payload, self.log)


def latest_report() -> tuple[dict, dict]:
    """(the pointer to the newest report, its summary); empty dicts if the check failed before writing one.
    The monitoring DAG runs one check at a time, so the newest report is the failed task's."""
    from featurepipe.monitoring_output import latest_file

    try:
        pointer = json.loads(latest_file().read_text())
        return pointer, json.loads(open(pointer["summary"]).read())
    except (OSError, ValueError, KeyError):
        return {}, {}


def send(url: str, payload: dict, log) -> bool:
    """POST `payload` as JSON; False (logged) if the endpoint refuses or cannot be reached."""
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(payload, default=str).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            log.info("alert sent to the webhook: HTTP %s, %d breach(es)", response.status, len(payload["breaches"]))
            return True
    except Exception as exc:  # noqa: BLE001 - an unreachable webhook must not hide the breach itself
        log.error("alert NOT sent to the webhook (%s): %s", type(exc).__name__, exc)
        return False
