"""`lakehouse watch`: the live half of a running `lakehouse up`, per minute, in the terminal.

It reads what the Live dashboard and the AWS alarms read: events and active sessions per minute from the
fresh views (through the Athena stand-in), how long ago the live committer last committed, and each
source's quarantine rate over the last five minutes of staged batches. It flags the conditions the AWS
alarms page on (docs/live.md): a source quarantining more than its limit (cdk.json
`quality.max_quarantine_rate`), and a staged batch waiting more than two minutes for its live commit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pyiceberg.catalog import Catalog
from rich.console import Group
from rich.table import Table

from cdk_app.config import EnvConfig
from iceberg_tables.views import MINUTE_EVENTS, MINUTE_SESSIONS
from lakehouse.analytics.athena import query
from lambdas.contracts import lake_layout, live
from lambdas.live_committer.committer import STAGED_FILES

RATE_WINDOW = timedelta(minutes=5)  # the AWS quarantine-rate alarm's period
COMMIT_LAG_LIMIT = timedelta(minutes=2)  # the AWS commit-lag alarm's threshold


@dataclass(frozen=True)
class Minute:
    minute: datetime
    events: dict[str, int]  # by event type
    active_sessions: int


@dataclass(frozen=True)
class SourceRate:
    source: str
    received: int
    quarantined: int
    limit: float

    @property
    def rate(self) -> float:
        return self.quarantined / self.received if self.received else 0.0


@dataclass(frozen=True)
class Look:
    at: datetime
    minutes: list[Minute]  # the newest last
    last_commit: datetime | None  # the newest snapshot of any live table
    oldest_waiting: datetime | None  # the oldest clean batch staged after its live table's last commit
    sources: list[SourceRate]
    alerts: list[str] = field(default_factory=list)


def _recent_manifests(staging: Path, source: str, since: datetime) -> list[tuple[datetime, dict]]:
    """(written, manifest) of the source's manifests written since `since` (by the file's time)."""
    found = []
    for path in (staging / lake_layout.manifest_prefix(source)).rglob("*.json"):
        written = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        if written >= since:
            found.append((written, json.loads(path.read_text())))
    return sorted(found, key=lambda item: item[0])


def _last_commit(catalog: Catalog, table: str) -> datetime | None:
    """The newest snapshot that registered staged files: a maintenance commit (trim, compaction) is no sign that
    notifications are being committed."""
    registered = [s.timestamp_ms for s in catalog.load_table(table).metadata.snapshots
                  if s.summary is not None and STAGED_FILES in s.summary.additional_properties]
    return datetime.fromtimestamp(max(registered) / 1000, tz=timezone.utc) if registered else None


def look(catalog: Catalog, staging: Path, env: EnvConfig, now: datetime, minutes: int = 10) -> Look:
    """The live numbers as of `now`: the `minutes` minutes of event time up to the newest (as the Live
    dashboard shows them: the stream's last minutes, also once it stops), the live commit, the rates."""
    newest = f"(SELECT max(minute) FROM {MINUTE_EVENTS.full_name}) - INTERVAL '{minutes}' MINUTE"
    _, by_type = query(catalog, f"SELECT minute, event_type, events FROM {MINUTE_EVENTS.full_name} "
                                f"WHERE minute > {newest}")
    _, sessions = query(catalog, f"SELECT minute, active_sessions FROM {MINUTE_SESSIONS.full_name} "
                                 f"WHERE minute > {newest}")
    events: dict[datetime, dict[str, int]] = {}
    for minute, event_type, count in by_type:
        events.setdefault(minute, {})[event_type] = count
    active = dict(sessions)
    rows = [Minute(m, events.get(m, {}), active.get(m, 0)) for m in sorted(set(events) | set(active))]

    # each source's batches wait for their own live table's commits (one committer per table, decision 0500)
    last_commits = {source: _last_commit(catalog, table) for source in live.TABLE_OF_SOURCE
                    if (table := live.live_table(source)) and catalog.table_exists(table)}
    last_commit = max((c for c in last_commits.values() if c), default=None)
    waiting = []
    for source, committed in last_commits.items():
        after = committed or datetime.min.replace(tzinfo=timezone.utc)
        waiting += [written for written, m in _recent_manifests(staging, source, after)
                    if m["files"]["clean"] and written > after]
    rates = []
    for source, limit in env.quality.max_quarantine_rate.items():
        recent = [m for _, m in _recent_manifests(staging, source, now - RATE_WINDOW)]
        rates.append(SourceRate(source, sum(m["received"] for m in recent), sum(m["quarantined"] for m in recent),
                                limit))
    result = Look(now, rows, last_commit, min(waiting) if waiting else None, rates)
    result.alerts.extend(alerts(result))
    return result


def alerts(view: Look) -> list[str]:
    """What the AWS alarms would page on now."""
    found = [f"{s.source}: {s.quarantined} of {s.received} records quarantined in the last 5 minutes "
             f"({s.rate:.1%}, limit {s.limit:.1%})" for s in view.sources if s.received and s.rate > s.limit]
    if view.oldest_waiting is not None and view.at - view.oldest_waiting > COMMIT_LAG_LIMIT:
        found.append(f"live commit lag: a batch staged at {view.oldest_waiting:%H:%M:%S} is not in its live table "
                     f"after {(view.at - view.oldest_waiting).total_seconds():.0f} s (limit "
                     f"{COMMIT_LAG_LIMIT.total_seconds():.0f} s)")
    return found


def render(view: Look) -> Group:
    """The look as rich renderables: the minutes, then freshness and the sources, then the alerts."""
    types = sorted({t for m in view.minutes for t in m.events})
    minutes = Table(title=f"fresh.events per minute (UTC), as of {view.at:%H:%M:%S}")
    for column in ("minute", *types, "events", "active sessions"):
        minutes.add_column(column, justify="left" if column == "minute" else "right")
    for m in view.minutes:
        minutes.add_row(f"{m.minute:%H:%M}", *(str(m.events.get(t, 0)) for t in types), str(sum(m.events.values())),
                        str(m.active_sessions))
    commit = (f"{(view.at - view.last_commit).total_seconds():.0f} s ago" if view.last_commit else "never")
    sources = Table(title=f"last live commit: {commit}; quarantine over the last 5 minutes")
    for column in ("source", "received", "quarantined", "rate", "limit"):
        sources.add_column(column, justify="left" if column == "source" else "right")
    for s in view.sources:
        sources.add_row(s.source, str(s.received), str(s.quarantined), f"{s.rate:.1%}", f"{s.limit:.1%}")
    flags = [f"[bold red]ALERT[/] {a}" for a in view.alerts] or ["[green]no alerts[/]"]
    return Group(minutes, sources, *flags)
