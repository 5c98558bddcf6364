"""Training/serving parity (SPEC §6): the online store against the newest published rows in Delta.

The offline side is the feature table at the version the last successful materialize sent (Delta
time travel), so a run that has published but not yet materialized a newer version never makes a
false mismatch; what the online store lacks beyond that version is a freshness question
(`featurepipe report`). Users are sampled by a hash of (seed, user_id), the seed being the newest
as-of date of that version: the same sample for the same data, a new one each day. Every feature
group is checked the same way, entities keyed by its join key.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from featurepipe.spec import USER_PURCHASE, FeatureGroup

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

REL_TOLERANCE = 1e-9
SHOWN = 10  # mismatches named in the error
DEFAULT_SAMPLE = 1000  # users compared by the pipeline's check and `featurepipe parity`


class NothingMaterialized(RuntimeError):
    pass


@dataclass(frozen=True)
class Mismatch:
    entity: str  # the join key's value (a user_id, a product_id)
    feature: str
    online: object
    offline: object

    def __str__(self) -> str:
        return f"{self.entity} {self.feature} online={self.online!r} offline={self.offline!r}"


@dataclass
class ParityResult:
    features_version: int
    newest_as_of: dt.date
    users: int  # entities compared
    mismatches: list[Mismatch] = field(default_factory=list)
    group: FeatureGroup = USER_PURCHASE

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        head = (f"parity {self.group.name}: {self.users} {self.group.entity}s x {len(self.group.feature_names)} "
                f"features, online store vs feature table version {self.features_version} (newest as-of "
                f"{self.newest_as_of})")
        if self.ok:
            return f"{head}: all equal"
        entities = len({m.entity for m in self.mismatches})
        return f"{head}: {len(self.mismatches)} values differ for {entities} {self.group.entity}s"


def sample_users(newest: DataFrame, n: int, seed: str, group: FeatureGroup = USER_PURCHASE) -> DataFrame:
    """`n` entities of `newest` (all if fewer), chosen by a hash of (seed, key): stable for a seed."""
    from pyspark.sql import functions as F

    key = group.join_key
    return newest.orderBy(F.xxhash64(F.lit(seed), F.col(key)), F.col(key)).limit(n)


def newest_rows(table: DataFrame, group: FeatureGroup = USER_PURCHASE) -> DataFrame:
    """Each entity's row of the newest as-of date."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from featurepipe.lake import AS_OF_DATE

    order = Window.partitionBy(group.join_key).orderBy(F.col(AS_OF_DATE).desc())
    return table.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


def equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=REL_TOLERANCE, abs_tol=0.0)
    return a == b


def check_parity(spark: SparkSession, sample: int = DEFAULT_SAMPLE, group: FeatureGroup = USER_PURCHASE) -> ParityResult:
    """Compare every feature (and the row's as-of) of up to `sample` entities of `group`; the result
    lists every difference."""
    from featurepipe import bookkeeping, lake
    from featurepipe.feast_store import online_rows

    if sample < 1:
        raise ValueError(f"--sample must be >= 1, got {sample}")
    last = bookkeeping.last_materialized(spark, group)
    if last is None:
        raise NothingMaterialized(f"nothing of {group.name} was materialized yet: run `featurepipe run` or "
                                  "`featurepipe backfill` first")
    table = lake.read_version(spark, lake.features_table(group), last.features_version)
    newest_as_of = last.window_end  # a materialize window always ends at the newest as-of published then
    key = group.join_key
    names = group.feature_names
    offline = {r[key]: r for r in sample_users(newest_rows(table, group), sample, newest_as_of.isoformat(), group)
               .select(key, lake.AS_OF_DATE, *names).collect()}
    users = sorted(offline)
    online = {row[key]: row for row in online_rows([{key: u} for u in users], features=names, with_as_of=True)}
    result = ParityResult(last.features_version, newest_as_of, len(users), group=group)
    for user in users:
        want, got = offline[user], online[user]
        got_as_of = got["as_of"].date() if got["as_of"] else None
        if got_as_of != want[lake.AS_OF_DATE]:
            result.mismatches.append(Mismatch(user, "as_of", got_as_of and got_as_of.isoformat(), want[lake.AS_OF_DATE].isoformat()))
        for name in names:
            if not equal(got[name], want[name]):
                result.mismatches.append(Mismatch(user, name, got[name], want[name]))
    return result


def mismatch_lines(result: ParityResult) -> list[str]:
    """`<entity> feature online=… offline=…` for the first SHOWN mismatches, then how many more there are."""
    lines = [str(m) for m in result.mismatches[:SHOWN]]
    if len(result.mismatches) > SHOWN:
        lines.append(f"... and {len(result.mismatches) - SHOWN} more")
    return lines
