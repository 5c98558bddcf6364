"""DuckDB reference for every feature group a run computes (`featurepipe.spec.GROUPS`), and its
row-for-row comparison with the published Delta tables (bench/e2e.py).

The user group is `bench.compute`'s daily-tile query. Every other group's query is built here from
its spec: valid rows by the source's column rules (SPEC §2), one row per event id (earliest
timestamp, then the double columns, then the other columns with nulls last, then the file), daily
tiles per entity, range windows over whole days ([T - N days, T)), a row per (entity, T) iff the
entity has an event in [T - row horizon, T), per-value frames for modes, exact distinct counts and
ranks per as-of date. Each group's query reads its source's landing files itself, like the user
query. Results: one Parquet file per group, `<out_dir>/<group name>.parquet`.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from bench.compute import compare_group, duckdb_sql
from featurepipe.aggregations import Dtype, Op
from featurepipe.spec import (
    GROUPS,
    USER_PURCHASE,
    Column,
    Feature,
    FeatureGroup,
    Source,
)

_EPOCH = dt.date(1970, 1, 1)
# what Spark's `validation.is_blank` strips: space, \t, \n, \x0b, \f, \r
_WHITESPACE = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"
_SQL_TYPES = {Dtype.INT64: "BIGINT", Dtype.FLOAT64: "DOUBLE", Dtype.STRING: "VARCHAR"}
_SOURCE_FILE = "_source_file"
_ARRIVED = "_arrived"


def output(out_dir: Path, group: FeatureGroup) -> Path:
    """Where DuckDB writes the group's rows."""
    return Path(out_dir) / f"{group.name}.parquet"


def _epoch(day: dt.date) -> int:
    return (day - _EPOCH).days


def _blank(sql: str) -> str:
    return f"trim({sql}, {_WHITESPACE}) = ''"


def _breaks(column: Column, source: Source) -> list[str]:
    """SQL conditions, each true when a row breaks one of the column's rules (SPEC §2, `featurepipe.spec.Column`;
    the same rules as `featurepipe.validation`)."""
    c, rules = column.name, []
    if column.kind == "string":
        if column.required:
            rules += [f"{c} IS NULL", _blank(c)]
        if column.max_length is not None:
            rules.append(f"length({c}) > {column.max_length}")
    elif column.kind == "double":
        real = f"isfinite({c})"
        if column.required:
            rules += [f"{c} IS NULL OR isnan({c})", f"isinf({c})"]
            if column.min_value is None:
                rules.append(f"{real} AND {c} <= 0")
        if column.min_value is not None:
            rules.append(f"{real} AND {c} < {column.min_value!r}")
        if column.max_value is not None:
            rules.append(f"{real} AND {c} > {column.max_value!r}")
        if column.integral:
            rules.append(f"{real} AND {c} <> floor({c})")
    elif column.required:
        rules.append(f"{c} IS NULL")
    if c == source.timestamp_column:  # later than its file's arrival plus the tolerance
        tolerance_us = source.future_tolerance // dt.timedelta(microseconds=1)
        rules.append(f"{c} > {_ARRIVED} + to_microseconds({tolerance_us})")
    return [f"coalesce({rule}, false)" for rule in rules]


def _events_sql(raw: Path, source: Source) -> str:
    """Valid, deduplicated events of the source: its columns (doubles as DOUBLE, timestamps as UTC
    TIMESTAMP), from every Parquet file below `raw/<source>/`."""
    files = f"{raw}/{source.name}/**/*.parquet"
    kinds = {"string": "VARCHAR", "double": "DOUBLE", "timestamp": "TIMESTAMP"}
    columns = ", ".join(f"CAST({c.name} AS {kinds[c.kind]}) AS {c.name}" for c in source.columns)
    valid = " AND ".join(f"NOT {rule}" for c in source.columns for rule in _breaks(c, source))
    doubles = [c.name for c in source.columns if c.kind == "double"]
    others = [c.name for c in source.columns if c.name not in (source.id_column, source.timestamp_column, *doubles)]
    order = ", ".join([source.timestamp_column, *doubles, *(f"{c} NULLS LAST" for c in others), _SOURCE_FILE])
    return f"""
    arrivals AS (
        SELECT filename AS {_SOURCE_FILE}, CAST(last_modified AS TIMESTAMP) AS {_ARRIVED} FROM read_blob('{files}')
    ), landed AS (
        SELECT {columns}, filename AS {_SOURCE_FILE}
        FROM read_parquet('{files}', hive_partitioning = false, union_by_name = true, filename = true)
    ), valid AS (
        SELECT * FROM landed JOIN arrivals USING ({_SOURCE_FILE}) WHERE {valid}
    ), events AS (
        SELECT * FROM valid
        QUALIFY row_number() OVER (PARTITION BY {source.id_column} ORDER BY {order}) = 1
    )"""


def _covered_sql(tiles: str, keys: str, reach: int, first: dt.date, last: dt.date) -> str:
    """(keys, day) for every as-of day in [first, last] with a row of `tiles` in [day - reach, day - 1],
    each once: a tile day d covers d + 1 .. the earlier of d + reach and the keys' next tile day."""
    return f"""
        SELECT {keys}, unnest(range(greatest(day + 1, {_epoch(first)}), least(next_day, {_epoch(last)}) + 1)) AS day
        FROM (SELECT {keys}, day, least(day + {reach}, coalesce(lead(day) OVER (PARTITION BY {keys} ORDER BY day),
                                                                 day + {reach})) AS next_day
              FROM {tiles})"""


def _tile_columns(group: FeatureGroup) -> dict[str, str]:
    """Tile column -> its aggregate over one (entity, day)'s events; `n` (events) always."""
    columns = {"n": "count(*)"}
    for f in group.features:
        if f.op in (Op.SUM, Op.AVG, Op.MEAN):
            columns[f"sum_{f.column}"] = f"sum({f.column})"
        elif f.op is Op.MAX:
            columns[f"max_{f.column}"] = f"max({f.column})"
    return columns


def _window_sql(f: Feature) -> str | None:
    """The feature at an as-of row over its window `w<N>` of tile rows; None for the operations
    computed on frames of their own (mode, distinct count, rank)."""
    w, n, total = f"w{f.window_days}", f"sum(n) OVER w{f.window_days}", f"sum(sum_{f.column}) OVER w{f.window_days}"
    return {
        Op.COUNT: f"coalesce({n}, 0)",
        Op.SUM: f"coalesce({total}, 0.0)",
        Op.AVG: f"CASE WHEN coalesce({n}, 0) > 0 THEN {total} / {n} ELSE 0.0 END",
        Op.MEAN: f"CASE WHEN coalesce({n}, 0) > 0 THEN {total} / {n} END",
        Op.MAX: f"coalesce(max(max_{f.column}) OVER {w}, 0.0)",
    }.get(f.op)


def _value_tiles_sql(group: FeatureGroup, f: Feature, first: dt.date, last: dt.date) -> str:
    """(key, value, day, n): events per non-null value of the feature's column per entity and day."""
    ts = group.source.timestamp_column
    return f"""
        SELECT {group.join_key} AS key, {f.column} AS value, CAST({ts} AS DATE) - DATE '1970-01-01' AS day, count(*) AS n
        FROM keyed WHERE {f.column} IS NOT NULL AND {_in_tile_range(group, first, last)}
        GROUP BY ALL"""


def _mode_sql(f: Feature, first: dt.date, last: dt.date) -> str:
    """(key, day, feature): the most frequent value in the window, ties -> smallest; only rows with a value.
    Per (entity, value): its tile rows plus the as-of rows its window covers, counted over the range window."""
    n = f.window_days
    return f"""
    {f.name}_frames AS (
        SELECT key, value, day, n, false AS is_as_of FROM {f.name}_tiles
        UNION ALL SELECT key, value, day, NULL, true FROM ({_covered_sql(f"{f.name}_tiles", "key, value", n, first, last)})
    ), {f.name}_counts AS (
        SELECT key, value, day, is_as_of,
               sum(n) OVER (PARTITION BY key, value ORDER BY day RANGE BETWEEN {n} PRECEDING AND 1 PRECEDING) AS in_window
        FROM {f.name}_frames
    ), {f.name}_at AS (
        SELECT key, day, first(value ORDER BY in_window DESC, value ASC) AS {f.name}
        FROM {f.name}_counts WHERE is_as_of AND in_window > 0 GROUP BY ALL
    )"""


def _distinct_sql(f: Feature) -> str:
    """(key, day, feature) at the days where the count changes: the distinct values in the window, exact.

    A value seen on day d is in the window of d + 1 .. the earlier of d + N and its next day: one
    segment per value and tile day, disjoint; the count at T is the segments open at T, a running
    sum of +1 at each segment's start and -1 after its end (read at T with an as-of join)."""
    n = f.window_days
    return f"""
    {f.name}_segments AS (
        SELECT key, day + 1 AS lo, least(day + {n}, coalesce(lead(day) OVER (PARTITION BY key, value ORDER BY day),
                                                              day + {n})) AS hi
        FROM {f.name}_tiles
    ), {f.name}_steps AS (
        SELECT key, day, sum(step) AS step
        FROM (SELECT key, lo AS day, 1 AS step FROM {f.name}_segments
              UNION ALL SELECT key, hi + 1, -1 FROM {f.name}_segments)
        GROUP BY ALL
    ), {f.name}_at AS (
        SELECT key, day, sum(step) OVER (PARTITION BY key ORDER BY day ROWS UNBOUNDED PRECEDING) AS {f.name}
        FROM {f.name}_steps
    )"""


def _scalars_sql(group: FeatureGroup, first: dt.date, last: dt.date) -> str:
    """CTEs `keyed` (events with an entity), `tiles` (one row per entity and event day), `grid` (a
    row per entity and as-of day with an event in [T - row horizon, T)) and `scalars` (the grid with
    every feature a range window computes)."""
    key, ts = group.join_key, group.source.timestamp_column
    optional = "" if group.source.column(key).required else f"WHERE {key} IS NOT NULL AND NOT {_blank(key)}"
    stats = _tile_columns(group)
    scalars = [f for f in group.features if _window_sql(f) is not None]
    windows = ", ".join(f"w{n} AS (PARTITION BY key ORDER BY day RANGE BETWEEN {n} PRECEDING AND 1 PRECEDING)"
                        for n in sorted({f.window_days for f in scalars}))
    return f"""
    keyed AS (SELECT * FROM events {optional}
    ), tiles AS (
        SELECT {key} AS key, CAST({ts} AS DATE) - DATE '1970-01-01' AS day, {", ".join(f"{e} AS {c}" for c, e in stats.items())}
        FROM keyed WHERE {_in_tile_range(group, first, last)}
        GROUP BY ALL
    ), grid AS ({_covered_sql("tiles", "key", group.row_horizon_days, first, last)}
    ), scalars AS (
        SELECT key, day {"".join(f", {_window_sql(f)} AS {f.name}" for f in scalars)}
        FROM (SELECT key, day, {", ".join(stats)}, false AS is_as_of FROM tiles
              UNION ALL SELECT key, day, {", ".join("NULL" for _ in stats)}, true FROM grid)
        {"WINDOW " + windows if windows else ""}
        QUALIFY is_as_of
    )"""


def _in_tile_range(group: FeatureGroup, first: dt.date, last: dt.date) -> str:
    """Events of the days whose tiles as-of first..last read: [first - row horizon, last)."""
    ts = group.source.timestamp_column
    return f"{ts} >= DATE '{first}' - INTERVAL {group.row_horizon_days} DAY AND {ts} < DATE '{last}'"


def _per_value_sql(group: FeatureGroup, first: dt.date, last: dt.date) -> list[str]:
    """CTEs `<feature>_at` (key, day, feature) of each mode and distinct count, from its value tiles."""
    ctes = []
    for f in group.features:
        if f.op in (Op.MODE, Op.COUNT_DISTINCT):
            ctes.append(f"{f.name}_tiles AS ({_value_tiles_sql(group, f, first, last)})")
            ctes.append(_mode_sql(f, first, last) if f.op is Op.MODE else _distinct_sql(f))
    return ctes


def _rows_sql(group: FeatureGroup) -> str:
    """CTE `ranked`: the scalars joined with each per-value feature (a mode at its day, a distinct
    count at its last change on or before it, 0 if none), then the ranks of each as-of day."""
    columns, joins = [], []
    for f in group.features:
        if f.op is Op.MODE:
            columns.append(f.name)
            joins.append(f"LEFT JOIN {f.name}_at ON s.key = {f.name}_at.key AND s.day = {f.name}_at.day")
        elif f.op is Op.COUNT_DISTINCT:
            columns.append(f"coalesce({f.name}, 0) AS {f.name}")
            joins.append(f"ASOF LEFT JOIN {f.name}_at ON s.key = {f.name}_at.key AND s.day >= {f.name}_at.day")
    ranks = [f"row_number() OVER (PARTITION BY day ORDER BY {f.column} DESC, key ASC) AS {f.name}"
             for f in group.features if f.op is Op.RANK]
    return f"""
    computed AS (SELECT {", ".join(["s.*", *columns])} FROM scalars s {" ".join(joins)}
    ), ranked AS (SELECT {", ".join(["*", *ranks])} FROM computed)"""


def group_sql(raw: Path, out: Path, first: dt.date, last: dt.date, group: FeatureGroup) -> str:
    """DuckDB SQL writing the group's feature rows for as-of first..last to `out` (Parquet): the
    join key, `event_timestamp` (= T) and the spec's features, typed as published."""
    ctes = [_events_sql(raw, group.source), _scalars_sql(group, first, last), *_per_value_sql(group, first, last),
            _rows_sql(group)]
    features = ", ".join(f"CAST({f.name} AS {_SQL_TYPES[f.dtype]}) AS {f.name}" for f in group.features)
    return f"""
    SET TimeZone = 'UTC';
    COPY (
    WITH {", ".join(ctes)}
    SELECT key AS {group.join_key}, CAST(DATE '1970-01-01' + CAST(day AS INTEGER) AS TIMESTAMP) AS event_timestamp,
           {features}
    FROM ranked
    ) TO '{out}' (FORMAT parquet);
    """


def duckdb_sql_all(raw: Path, out_dir: Path, first: dt.date, last: dt.date) -> list[str]:
    """One DuckDB script per feature group, in the pipeline's order, each writing `output(out_dir, group)`:
    `bench.compute.duckdb_sql` for the user group, `group_sql` for the others."""
    return [duckdb_sql(raw, output(out_dir, g), first, last) if g is USER_PURCHASE
            else group_sql(raw, output(out_dir, g), first, last, g) for g in GROUPS]


def duckdb_all(raw: Path, out_dir: Path, first: dt.date, last: dt.date) -> float:
    """Seconds for DuckDB to compute every group (one connection, the scripts one after another)."""
    import duckdb

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    con = duckdb.connect()
    for script in duckdb_sql_all(raw, out_dir, first, last):
        con.execute(script)
    con.close()
    return time.perf_counter() - began


def compare_all(out_dir: Path, first: dt.date, last: dt.date) -> dict[str, int]:
    """Every group's published Delta table (its live files, as-of first..last) against DuckDB's
    `output(out_dir, group)`, row for row; returns the rows compared per group. Raises AssertionError
    naming each group that disagrees and its mismatching rows per check."""
    from bench.harness import live_files
    from featurepipe import lake

    rows, wrong = {}, {}
    for group in GROUPS:
        ours = live_files(lake.table_path(lake.features_table(group)))
        if not ours:
            raise AssertionError(f"{group.name}: the published Delta table has no live files")
        rows[group.name], mismatches = compare_group(ours, output(out_dir, group), group, first, last)
        if mismatches:
            wrong[group.name] = mismatches
    if wrong:
        raise AssertionError(f"the published tables and DuckDB disagree (mismatching rows per group and check): {wrong}")
    return rows
