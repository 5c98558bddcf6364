"""Configuration from the environment (SPEC §1), read lazily: importing this module reads nothing."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FEATURE_REPO_DIR = PROJECT_ROOT / "feature_repo"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DAGS_DIR = PROJECT_ROOT / "dags"
JOBS_DIR = PROJECT_ROOT / "jobs"
JARS_DIR = PROJECT_ROOT / ".jars"

_dotenv_loaded = False


def _env(name: str, default: str | None = None) -> str | None:
    """One variable, after loading `.env` (working directory, then project root) once."""
    global _dotenv_loaded
    if not _dotenv_loaded:
        from dotenv import load_dotenv

        load_dotenv(Path.cwd() / ".env", override=False)
        load_dotenv(PROJECT_ROOT / ".env", override=False)
        _dotenv_loaded = True
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    raw_uri: str
    lake_uri: str
    online_store: str
    redis_url: str
    spark_master: str
    late_lookback_days: int
    spark_codegen: str  # auto | on | off: Spark's code generation (featurepipe.spark.fit_codegen)
    spark_server_idle_minutes: float  # the CLI's shared driver stops after this long idle; 0: none (featurepipe.shared_driver)
    lease_ttl_seconds: float  # a writer's lease on the lake expires this long after its last renewal (featurepipe.lease)
    lease_wait_minutes: float  # a writer waits this long for the lease before failing
    step_timeout_minutes: float  # Airflow ends a Spark step running longer than this (execution_timeout); 0: none
    step_retries: int  # Airflow retries of a failed or timed-out step (not of validate_raw/validate_features)
    max_feature_age: dt.timedelta  # an online row older than this is `stale` (SPEC §6)

    @property
    def spark_local(self) -> bool:
        """Spark runs in this process's JVM (`local`, `local[*]`, `local[N]`): workers use this venv's Python."""
        return self.spark_master.startswith("local")

    # --- locations derived from the roots, defined once -------------------
    @property
    def transactions_uri(self) -> str:
        return _join(self.raw_uri, "transactions")

    def source_uri(self, source: str) -> str:
        """A raw source's landing zone, e.g. `$FEATUREPIPE_RAW_URI/ratings`."""
        return _join(self.raw_uri, source)

    def table_uri(self, table: str) -> str:
        """A Delta table under the lake, e.g. `features/user_purchase_features`."""
        return _join(self.lake_uri, table)

    @property
    def airflow_home(self) -> Path:
        return self.data_dir / "airflow"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def gx_dir(self) -> Path:
        return self.data_dir / "gx"


def get_settings() -> Settings:
    """Current settings from the environment (and `.env`); cheap, call it where needed."""
    data_dir = Path(_env("FEATUREPIPE_DATA_DIR", "./data")).expanduser().resolve()
    online = (_env("FEATUREPIPE_ONLINE_STORE", "sqlite") or "sqlite").lower()
    if online not in ("sqlite", "redis"):
        raise ValueError(f"FEATUREPIPE_ONLINE_STORE must be 'sqlite' or 'redis', got {online!r}")
    return Settings(
        data_dir=data_dir,
        raw_uri=_normalise_uri(_env("FEATUREPIPE_RAW_URI", str(data_dir / "raw"))),
        lake_uri=_normalise_uri(_env("FEATUREPIPE_LAKE_URI", str(data_dir / "lake"))),
        online_store=online,
        redis_url=_env("FEATUREPIPE_REDIS_URL", "redis://localhost:6379/0"),
        spark_master=_env("FEATUREPIPE_SPARK_MASTER", "local[*]"),
        late_lookback_days=_non_negative("FEATUREPIPE_LATE_LOOKBACK_DAYS", 30),
        spark_codegen=_choice("FEATUREPIPE_SPARK_CODEGEN", ("auto", "on", "off")),
        spark_server_idle_minutes=_non_negative("FEATUREPIPE_SPARK_SERVER_IDLE_MINUTES", 30.0, float, "a number of minutes"),
        lease_ttl_seconds=max(1.0, _non_negative("FEATUREPIPE_LEASE_TTL_SECONDS", 120.0, float, "a number of seconds")),
        lease_wait_minutes=_non_negative("FEATUREPIPE_LEASE_WAIT_MINUTES", 120.0, float, "a number of minutes"),
        step_timeout_minutes=_non_negative("FEATUREPIPE_STEP_TIMEOUT_MINUTES", 360.0, float, "a number of minutes"),
        step_retries=_non_negative("FEATUREPIPE_STEP_RETRIES", 2, int, "a whole number"),
        max_feature_age=parse_duration(_env("FEATUREPIPE_MAX_FEATURE_AGE", "2d"), "FEATUREPIPE_MAX_FEATURE_AGE"),
    )


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, name: str = "duration") -> dt.timedelta:
    """`2d`, `36h`, `1d12h`, `90m`, `30s` (parts summed) -> timedelta; ValueError naming `name` otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{name} must be a duration like 2d, 36h, 1d12h or 90m; got {text!r}")
    return dt.timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def format_duration(value: dt.timedelta) -> str:
    """The inverse of `parse_duration`: 48 h -> `2d`, 36 h -> `1d12h`, 90 min -> `1h30m` (whole seconds)."""
    left = round(value.total_seconds())
    parts = []
    for unit, seconds in _UNIT_SECONDS.items():
        count, left = divmod(left, seconds)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _choice(name: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed` (case-insensitive); the first is the default."""
    value = (_env(name, allowed[0]) or allowed[0]).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _non_negative(name: str, default: int | float, kind: type = int, what: str = "a whole number of days"):
    """A number >= 0 of `kind` (int or float), with an error naming the variable."""
    text = _env(name, str(default))
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name} must be {what}, got {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{name} must be >= 0, got {text!r}")
    return value


def _normalise_uri(uri: str) -> str:
    """Local paths become absolute; `s3://`/`s3a://` URIs are kept as given."""
    if "://" in uri:
        return uri.rstrip("/")
    return str(Path(uri).expanduser().resolve())

