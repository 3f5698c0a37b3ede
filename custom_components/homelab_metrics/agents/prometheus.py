"""A Prometheus-compatible server (Prometheus, VictoriaMetrics, Thanos, Mimir) as a source of many nodes.

Such a server already scrapes node_exporter on every machine. Instead of scraping each exporter a
second time, one poll asks it a fixed number of PromQL instant queries (`POLL_BATCHES`, whatever
the number of nodes) and turns the answer into one Sample per node (`instance` label). Past data
comes from `query_range`: raw samples at the scan interval, and hourly avg/min/max/count buckets
for older hours (`plan_import`).

Every figure has the definition of the direct node_exporter agent (`node_exporter.build_sample`),
written in PromQL by `field_queries`:

- CPU busy % from `rate(node_cpu_seconds_total)`, iowait counted as idle. A rate over the window
  `rate_window` is the counter delta between two samples divided by their distance, as the direct
  agent's poll-to-poll delta, but over Prometheus' samples (see `suggest_rate_window`); a counter
  reset inside the window is bridged by Prometheus rather than giving no figure.
- Memory % from MemAvailable / MemTotal; the root filesystem as `df` shows it; load; boot time.
- Network bytes per second summed over physical interfaces only: `physical_interface_regex` is
  made from the same prefix list as `is_physical`.
- The hottest CPU sensor: hwmon CPU chips (`cpu_chip_regex`), a chip's Tctl yielding to its Tdie,
  readings outside the plausible range skipped first, else CPU thermal zones.

Where one instance is scraped by several jobs, the figures are computed per job and the largest
kept (they are the same exporter). Nothing here imports Home Assistant.

Why one module of about 740 lines: the client, the decoding of its answers and the import
plan share the same bounds (see the limits below); the PromQL text is in `promql`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
import json
import math
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import aiohttp

from .base import (
    DEFAULT_TIMEOUT,
    AgentConfig,
    CannotConnect,
    FilesystemUsage,
    InvalidResponse,
    Sample,
)
from .http import HttpAgentClient, Reply, async_off_loop
from .promql import (
    FIELDS,
    POLL_BATCHES,
    ROOT_FREE,
    STATS,
    TAG,
    UP_TAG,
    batch,
    discovery_query,
    field_queries,
    history_stat_queries,
    poll_queries,
    promql_string,
    selector,
)
from .readings import plausible

# --- Limits ---------------------------------------------------------------------------------------

MAX_SERIES = 100_000
"""Result entries (instant) or series (range) one answer may hold: about 15 per node."""
MAX_POINTS = 400_000
"""Values one range answer may hold, over all its series."""
MAX_NUMBER_CHARS = 40
"""Longest number text accepted; "-1.7976931348623157e+308" has 24 characters."""
MAX_LABEL_CHARS = 1024
"""Longest instance, job or node name kept; longer ones are skipped, not cut."""
MAX_INFO_CHARS = 255
"""Longest host name, OS name or version kept (as the direct agent keeps them)."""
MAX_NODES = 5000
"""Nodes one poll or discovery may return."""
MAX_RANGE_POINTS = 720
"""Steps one query_range asks for: 12 hours at a 60 s interval, about 300 kB of answer."""
HOURS_PER_REQUEST = 48
"""Hourly buckets one query_range asks for (each hour evaluates its subqueries at every step)."""
RAW_DAYS = 7
"""Days imported as raw samples (the raw tier's retention)."""
MAX_IMPORT_DAYS = 90
"""Days imported at most (the hourly tier's retention)."""
HOUR = 3600
OFF_LOOP_BYTES = 64 * 1024
"""Answers larger than this are decoded and turned into Samples in the executor: about 1 ms of
work on the event loop at most (a 200-node poll is ~300 kB, a raw import chunk ~300 kB)."""
OFF_LOOP_ENTRIES = 1000
"""Poll entries (about 15 per node) above which the Samples are built in the executor."""

API = "/api/v1"

# --- Results ---------------------------------------------------------------------------------------

_INT_FIELDS = frozenset(
    {
        "memory_used_bytes",
        "memory_total_bytes",
        "disk_used_bytes",
        "disk_total_bytes",
        "boot_time",
        "updates_pending",
        ROOT_FREE,
    }
)
_BOOL_FIELDS = {"reboot_required": {0.0: False, 1.0: True}}
"""Fields that are yes/no, from the 0/1 a collector writes (anything else: no figure)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerInfo:
    """What the connection test learnt about the server."""

    version: str | None
    """The version from buildinfo; None when the server does not say (VictoriaMetrics)."""
    buildinfo: bool
    """Whether /api/v1/status/buildinfo answered; otherwise a query proved the API."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Node:
    """One node_exporter target the server scrapes."""

    instance: str
    """The `instance` label: the node's identity in every query and poll result."""
    job: str
    """The scrape job (the first one, by name, when several jobs scrape the instance)."""
    nodename: str | None
    """Host name from node_uname_info; None when the node has never been scraped."""
    up: bool
    """Whether the last scrape of the node succeeded."""
    scrape_interval: float | None
    """Seconds between the server's scrapes of it, from the last 5 minutes; None before the
    second scrape."""
    os: str | None = None
    """Operating system as the direct agent names it: os-release's PRETTY_NAME, else its NAME
    and VERSION, else the kernel (node_os_info, node_uname_info)."""
    version: str | None = None
    """node_exporter's version (node_exporter_build_info)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldStats:
    """One field over one hour: average, extremes, and how many samples had it."""

    avg: float
    min: float
    max: float
    count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HourBucket:
    """One UTC hour of a node's past, as the store's hourly rollup would have made it."""

    timestamp: int
    """Start of the hour (a multiple of 3600)."""
    samples: int
    """Samples the hour stands for: the largest count of any field."""
    fields: Mapping[str, FieldStats]
    """By Sample field name; a field without samples that hour is left out."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportChunk:
    """One request's worth of an import: a tier and a half-open time range [start, end)."""

    tier: Literal["raw", "hourly"]
    start: int
    end: int


def suggest_rate_window(scan_interval: int, scrape_interval: float | None) -> int:
    """Seconds of the rate window: the scan interval, but at least four scrapes.

    The direct agent's rate spans one scan interval. A rate needs two samples in its window, and
    four scrapes' worth survives one missed scrape (Prometheus' own advice).
    """
    scrape = (
        scrape_interval if scrape_interval and math.isfinite(scrape_interval) else 60.0
    )
    return max(int(scan_interval), math.ceil(4 * scrape))


def plan_import(
    *,
    now: int,
    step: int,
    oldest: int | None,
    raw_days: int = RAW_DAYS,
    max_days: int = MAX_IMPORT_DAYS,
) -> list[ImportChunk]:
    """The requests of one node's import, newest first, deterministic for a given now.

    Raw samples at step seconds from the first whole hour within raw_days up to now; hourly
    buckets for the whole hours before that, back to oldest (the node's first data) or max_days.
    A caller that records the chunks done resumes by skipping them; the store keys rows by time,
    so a chunk done twice gives the same rows.
    """
    step = max(1, int(step))
    first = (now - max_days * 86_400) // HOUR * HOUR
    if oldest is not None:
        first = max(first, oldest // HOUR * HOUR)
    raw_start = max(first, -(-(now - raw_days * 86_400) // HOUR) * HOUR)
    chunks: list[ImportChunk] = []
    span = step * MAX_RANGE_POINTS
    end = now
    while end > raw_start:
        start = max(raw_start, end - span)
        chunks.append(ImportChunk(tier="raw", start=start, end=end))
        end = start
    end = raw_start
    while end > first:
        start = max(first, end - HOURS_PER_REQUEST * HOUR)
        chunks.append(ImportChunk(tier="hourly", start=start, end=end))
        end = start
    return chunks


# --- Parsing ----------------------------------------------------------------------------------------


def _number_text(text: str) -> float:
    """json.loads hook for numbers: refuse overlong digit strings before converting them."""
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError("number too long")
    return float(text)


def _no_constant(text: str) -> float:
    """json.loads hook: NaN and Infinity are not JSON, and Prometheus sends them as strings."""
    raise ValueError(f"{text} is not JSON")


def decode(reply: Reply, what: str) -> Any:
    """The `data` of a Prometheus API answer; InvalidResponse for anything else.

    The body is already capped in bytes; numbers are capped in digits; nesting ends in a
    RecursionError that becomes InvalidResponse; `status: error` carries the server's reason.
    """
    if reply.status in (502, 503, 504):
        raise CannotConnect(f"{what}: HTTP {reply.status}")
    try:
        body = json.loads(
            reply.body,
            parse_int=_number_text,
            parse_float=_number_text,
            parse_constant=_no_constant,
        )
    except (ValueError, RecursionError) as err:
        kind = reply.content_type.split(";", 1)[0] or "untyped"
        raise InvalidResponse(
            f"{what}: HTTP {reply.status}, {kind}, not a Prometheus API answer"
        ) from err
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise InvalidResponse(
            f"{what}: HTTP {reply.status}, not a Prometheus API answer"
        )
    if body["status"] == "error":
        reason = str(body.get("error", ""))[:200]
        raise InvalidResponse(
            f"{what}: {body.get('errorType', 'error')}: {reason} (HTTP {reply.status})"
        )
    if reply.status != 200:
        raise InvalidResponse(f"{what}: HTTP {reply.status}")
    return body.get("data")


def value_of(text: Any) -> float | None:
    """A sample value ("1.5", "NaN", "+Inf") as a finite float, else None."""
    if not isinstance(text, str) or len(text) > MAX_NUMBER_CHARS:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _label(metric: Mapping[str, Any], name: str) -> str | None:
    """A label's value, when it is a string of a sane length."""
    value = metric.get(name)
    return value if isinstance(value, str) and len(value) <= MAX_LABEL_CHARS else None


def vector_entries(data: Any) -> list[tuple[Mapping[str, Any], float | None]]:
    """(labels, value) of an instant vector answer."""
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise InvalidResponse("expected an instant vector")
    result = data.get("result")
    if not isinstance(result, list):
        raise InvalidResponse("vector without a result list")
    if len(result) > MAX_SERIES:
        raise InvalidResponse(f"more than {MAX_SERIES} series")
    out: list[tuple[Mapping[str, Any], float | None]] = []
    for item in result:
        if not isinstance(item, dict):
            continue
        metric, point = item.get("metric"), item.get("value")
        if (
            not isinstance(metric, dict)
            or not isinstance(point, list)
            or len(point) != 2
        ):
            continue
        out.append((metric, value_of(point[1])))
    return out


def matrix_entries(
    data: Any,
) -> list[tuple[Mapping[str, Any], list[tuple[int, float | None]]]]:
    """(labels, [(timestamp, value)]) of a range answer; timestamps in whole seconds."""
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise InvalidResponse("expected a range matrix")
    result = data.get("result")
    if not isinstance(result, list):
        raise InvalidResponse("matrix without a result list")
    if len(result) > MAX_SERIES:
        raise InvalidResponse(f"more than {MAX_SERIES} series")
    points = 0
    out: list[tuple[Mapping[str, Any], list[tuple[int, float | None]]]] = []
    for item in result:
        if not isinstance(item, dict):
            continue
        metric, values = item.get("metric"), item.get("values")
        if not isinstance(metric, dict) or not isinstance(values, list):
            continue
        points += len(values)
        if points > MAX_POINTS:
            raise InvalidResponse(f"more than {MAX_POINTS} points")
        series = [
            (round(point[0]), value_of(point[1]))
            for point in values
            if isinstance(point, list)
            and len(point) == 2
            and isinstance(point[0], int | float)
            and not isinstance(point[0], bool)
            and math.isfinite(point[0])
        ]
        out.append((metric, series))
    return out


def build_poll(
    entries: Iterable[tuple[Mapping[str, Any], float | None]], timestamp: int
) -> dict[str, Sample | None]:
    """Samples by instance from tagged poll entries; None for a node whose last scrape failed.

    A node appears when it has a figure or a failed scrape; a target that is up without any
    node_exporter series (another exporter in the same job) does not.
    """
    figures: dict[str, dict[str, float]] = {}
    up: dict[str, float | None] = {}
    for metric, value in entries:
        instance, tag = _label(metric, "instance"), _label(metric, TAG)
        if instance is None or tag is None:
            continue
        if tag == UP_TAG:
            up[instance] = value
        elif tag in FIELDS and value is not None:
            figures.setdefault(instance, {})[tag] = value
    result: dict[str, Sample | None] = {}
    for instance in sorted(figures.keys() | up.keys()):
        if up.get(instance, 1.0) == 0.0:
            result[instance] = None
        elif instance in figures:
            result[instance] = sample_from(figures[instance], timestamp)
        if len(result) > MAX_NODES:
            raise InvalidResponse(f"more than {MAX_NODES} nodes")
    return result


def sample_from(figures: Mapping[str, float], timestamp: int) -> Sample:
    """A plausible Sample from a node's figures by field name."""
    values: dict[str, Any] = {}
    for field, value in figures.items():
        if field in _BOOL_FIELDS:
            values[field] = _BOOL_FIELDS[field].get(value)
        elif field in _INT_FIELDS:
            if abs(value) < 2**63:
                values[field] = int(value)
        else:
            values[field] = value
    root_free = values.pop(ROOT_FREE, None)
    used, percent = values.get("disk_used_bytes"), values.get("disk_percent")
    if root_free is not None and used is not None and percent is not None:
        values["filesystems"] = (
            FilesystemUsage(
                mountpoint="/", used_bytes=used, free_bytes=root_free, percent=percent
            ),
        )
    return plausible(Sample(timestamp=timestamp, **values))


def build_range_samples(
    entries: Iterable[tuple[Mapping[str, Any], list[tuple[int, float | None]]]],
) -> list[Sample]:
    """One Sample per evaluation time from a range answer of tagged field series, oldest first."""
    by_time: dict[int, dict[str, float]] = {}
    for metric, points in entries:
        tag = _label(metric, TAG)
        if tag not in FIELDS:
            continue
        for ts, value in points:
            if value is not None:
                by_time.setdefault(ts, {})[tag] = value
    return [sample_from(by_time[ts], ts) for ts in sorted(by_time)]


def build_hours(
    entries: Iterable[tuple[Mapping[str, Any], list[tuple[int, float | None]]]],
    *,
    offset: int,
) -> list[HourBucket]:
    """Hourly buckets from a range answer of `field:stat` series evaluated offset s after each hour."""
    stats: dict[int, dict[str, dict[str, float]]] = {}
    for metric, points in entries:
        tag = _label(metric, TAG)
        if tag is None or ":" not in tag:
            continue
        field, stat = tag.rsplit(":", 1)
        if field not in FIELDS or field == ROOT_FREE or stat not in STATS:
            continue
        for ts, value in points:
            if value is not None:
                stats.setdefault(ts - offset, {}).setdefault(field, {})[stat] = value
    buckets: list[HourBucket] = []
    for hour in sorted(stats):
        if hour % HOUR:
            continue
        fields: dict[str, FieldStats] = {}
        for field, got in stats[hour].items():
            count = got.get("count")
            if count is None or count < 1 or len(got) != 4:
                continue
            sample = sample_from(
                {field: got["avg"]}, hour
            )  # the same plausibility as a poll
            if getattr(sample, field) is None:
                continue
            fields[field] = FieldStats(
                avg=got["avg"], min=got["min"], max=got["max"], count=int(count)
            )
        if fields:
            buckets.append(
                HourBucket(
                    timestamp=hour,
                    samples=max(f.count for f in fields.values()),
                    fields=fields,
                )
            )
    return buckets


def build_nodes(
    entries: Iterable[tuple[Mapping[str, Any], float | None]],
) -> list[Node]:
    """Nodes from a discovery answer (tags uname, node, up, interval), sorted by instance."""
    jobs: dict[str, set[str]] = {}
    nodename: dict[str, str] = {}
    kernel: dict[str, str] = {}
    os_name: dict[str, str] = {}
    version: dict[str, str] = {}
    up: dict[str, bool] = {}
    interval: dict[str, float] = {}
    has_series: set[str] = set()
    for metric, value in entries:
        instance, job, tag = (
            _label(metric, "instance"),
            _label(metric, "job"),
            _label(metric, TAG),
        )
        if instance is None or tag is None:
            continue
        if job is not None:
            jobs.setdefault(instance, set()).add(job)
        if tag == "uname":
            has_series.add(instance)
            if name := _info(metric, "nodename"):
                nodename.setdefault(instance, name)
            if name := _info(metric, "sysname", "release"):
                kernel.setdefault(instance, name)
        elif tag == "os":
            if name := _info(metric, "pretty_name") or _info(metric, "name", "version"):
                os_name.setdefault(instance, name)
        elif tag == "build":
            if name := _info(metric, "version"):
                version.setdefault(instance, name)
        elif tag == "node":
            has_series.add(instance)
        elif tag == "up" and value is not None:
            up[instance] = up.get(instance, False) or value == 1.0
        elif tag == "interval" and value is not None and value > 0:
            interval[instance] = max(interval.get(instance, 0.0), value)
    wanted = has_series | {i for i, ok in up.items() if not ok}
    if len(wanted) > MAX_NODES:
        raise InvalidResponse(f"more than {MAX_NODES} nodes")
    return [
        Node(
            instance=instance,
            job=min(jobs.get(instance, {""})),
            nodename=nodename.get(instance),
            up=up.get(instance, instance in has_series),
            scrape_interval=interval.get(instance),
            os=os_name.get(instance) or kernel.get(instance),
            version=version.get(instance),
        )
        for instance in sorted(wanted)
    ]


def _info(metric: Mapping[str, Any], *names: str) -> str | None:
    """Labels of an info series joined by spaces, when they hold something and are not too long."""
    text = " ".join(
        value.strip() for name in names if (value := _label(metric, name))
    ).strip()
    return text if text and len(text) <= MAX_INFO_CHARS else None


# --- Client ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PrometheusConfig:
    """Where a Prometheus-compatible server answers and how to authenticate."""

    url: str
    """http(s)://host[:port][/path prefix], e.g. "http://192.168.1.5:9090" or
    "https://metrics.example.org/prometheus"."""
    username: str | None = None
    password: str | None = None
    token: str | None = None
    """A bearer token (Grafana Cloud, Mimir or Thanos behind a proxy); not with a username."""
    verify_ssl: bool = True
    timeout: float = DEFAULT_TIMEOUT


def split_url(url: str) -> tuple[AgentConfig, str]:
    """The address (scheme, host, port) and path prefix of a server URL; ValueError when unusable."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname or parts.username or parts.password:
        raise ValueError("the URL needs a host name and no credentials")
    if parts.query or parts.fragment:
        raise ValueError("the URL must not have a query or fragment")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    prefix = parts.path.rstrip("/")
    return AgentConfig(
        host=parts.hostname, port=port, ssl=parts.scheme == "https"
    ), prefix


class PrometheusClient(HttpAgentClient):
    """Queries one Prometheus-compatible server for every node_exporter it scrapes."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: PrometheusConfig,
        **kwargs: Any,
    ) -> None:
        """Bind to Home Assistant's session; ValueError for an unusable URL or mixed credentials."""
        address, self._prefix = split_url(config.url)
        if config.token and config.username:
            raise ValueError("a bearer token and a user name exclude each other")
        super().__init__(
            session,
            replace(
                address,
                verify_ssl=config.verify_ssl,
                username=config.username or None,
                password=config.password,
                timeout=config.timeout,
            ),
            **kwargs,
        )
        self._headers = (
            {"Authorization": f"Bearer {config.token}"} if config.token else {}
        )

    async def _async_api[T](
        self,
        path: str,
        params: Mapping[str, str],
        what: str,
        then: Callable[[Any], T],
    ) -> T:
        """GET an API path; then(the answer's data), off the event loop for a big answer."""
        query = f"?{urlencode(params)}" if params else ""
        reply = await self._async_get(
            f"{self._prefix}{API}{path}{query}", self._headers
        )
        if len(reply.body) > OFF_LOOP_BYTES:
            return await async_off_loop(_decoded, reply, what, then)
        return _decoded(reply, what, then)

    async def async_query[T](
        self,
        query: str,
        time: float | None = None,
        *,
        then: Callable[[Any], T],
    ) -> T:
        """An instant query's answer through then (e.g. `vector_entries`)."""
        params = {"query": query}
        if time is not None:
            params["time"] = f"{time:.3f}"
        return await self._async_api("/query", params, "query", then)

    async def async_query_range[T](
        self,
        query: str,
        start: int,
        end: int,
        step: int,
        *,
        then: Callable[[Any], T],
    ) -> T:
        """A range query evaluated at start, start + step, … up to end, through then."""
        params = {
            "query": query,
            "start": str(start),
            "end": str(end),
            "step": f"{step}s",
        }
        return await self._async_api("/query_range", params, "query_range", then)

    async def async_test(self) -> ServerInfo:
        """Prove that a Prometheus API answers here (buildinfo, else a query) and with these credentials."""
        try:
            data = await self._async_api(
                "/status/buildinfo", {}, "buildinfo", lambda data: data
            )
        except InvalidResponse:
            # Thanos, Mimir and some proxies have no buildinfo: a query proves the API.
            await self.async_query("vector(1)", then=vector_entries)
            return ServerInfo(version=None, buildinfo=False)
        version = data.get("version") if isinstance(data, dict) else None
        return ServerInfo(
            version=version if isinstance(version, str) and version else None,
            buildinfo=True,
        )

    async def async_discover(self) -> list[Node]:
        """The node_exporter targets: instance, job, host name, up, scrape interval."""
        return await self.async_query(
            discovery_query(), then=lambda data: build_nodes(vector_entries(data))
        )

    async def async_poll(
        self,
        window: int,
        instances: Collection[str] | None = None,
        batches: Sequence[Sequence[str]] = POLL_BATCHES,
        at: float | None = None,
    ) -> dict[str, Sample | None]:
        """One Sample per node (None: its last scrape failed), from len(batches) queries.

        instances restricts the answer to the chosen nodes (on the server when there are few);
        a chosen node missing from the answer is no longer scraped. Queries run concurrently.
        at evaluates them at that time instead of the server's now (the Samples' timestamp too).
        """
        timestamp = int(self._clock() if at is None else at)
        queries = poll_queries(window, instances, batches)
        # Every request ends before the poll does, whichever fails first: none is left behind.
        answers = await asyncio.gather(
            *(self.async_query(q, at, then=vector_entries) for q in queries),
            return_exceptions=True,
        )
        entries: list[tuple[Mapping[str, Any], float | None]] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            entries.extend(answer)
        if len(entries) > OFF_LOOP_ENTRIES:
            nodes = await async_off_loop(build_poll, entries, timestamp)
        else:
            nodes = build_poll(entries, timestamp)
        if instances is not None:
            chosen = set(instances)
            nodes = {i: s for i, s in nodes.items() if i in chosen}
        return nodes

    async def async_oldest(
        self, instance: str, now: int, max_days: int = MAX_IMPORT_DAYS
    ) -> int | None:
        """Start of the first hour within max_days that has data of the node, or None."""
        start = (now - max_days * 86_400) // HOUR * HOUR
        memory = selector(
            "node_memory_MemTotal_bytes", f"instance={promql_string(instance)}"
        )
        entries = await self.async_query_range(
            f"count_over_time({memory}[1h])",
            start + HOUR,
            now // HOUR * HOUR + HOUR,
            HOUR,
            then=matrix_entries,
        )
        times = [ts for _, points in entries for ts, v in points if v]
        return min(times) - HOUR if times else None

    async def async_import_chunk(
        self,
        instance: str,
        chunk: ImportChunk,
        *,
        step: int,
        window: int,
        fields: Sequence[str],
    ) -> list[Sample] | list[HourBucket]:
        """One chunk of a node's past: raw Samples at step seconds, or hourly buckets of fields."""
        if chunk.tier == "raw":
            query = batch(field_queries(window, instance))
            # query_range includes both ends; the chunk is half-open.
            last = chunk.end - 1 - (chunk.end - 1 - chunk.start) % step
            if last < chunk.start:
                return []
            return await self.async_query_range(
                query,
                chunk.start,
                last,
                step,
                then=lambda data: build_range_samples(matrix_entries(data)),
            )
        query = batch(history_stat_queries(window, step, instance, fields))
        # Evaluated at the hour's last second, a [1h] subquery covers exactly [hour, hour + 1h).
        offset = HOUR - 1
        return await self.async_query_range(
            query,
            chunk.start + offset,
            chunk.end - HOUR + offset,
            HOUR,
            then=lambda data: build_hours(matrix_entries(data), offset=offset),
        )


def _decoded[T](reply: Reply, what: str, then: Callable[[Any], T]) -> T:
    """then(the answer's data)."""
    return then(decode(reply, what))
