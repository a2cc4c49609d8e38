"""Prometheus metrics, drawn from the status file at every scrape: the same numbers whether
they are served (METRICS_ADDRESS), written for node_exporter (METRICS_TEXTFILE) or pushed
(METRICS_PUSHGATEWAY), and they survive restarts of the process."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.liveness import is_alive
from moonflower.core.logs import log
from moonflower.core.state_dir import state_directory
from moonflower.reporting.health import health, parsed
from moonflower.reporting.status_file import StateFile

PUSH_TIMEOUT_SECONDS = 10
PUSH_JOB = "moonflower"
COUNTERS = {
    "runs": "Backup runs",
    "failed_runs": "Backup runs that failed",
    "backups": "Databases backed up",
    "backup_failures": "Database backups that failed",
    "uploaded_bytes": "Bytes of backups uploaded",
    "s3_retries": "S3 requests retried after a transient failure",
    "size_drops": "Backups flagged because their size dropped",
    "pruned_backups": "Backups deleted by prune (after a run, or moonflower prune)",
}
PER_DATABASE = {
    "last_attempt": ("backup_last_attempt_timestamp_seconds", "When the last backup ended"),
    "last_success": ("backup_last_success_timestamp_seconds", "When the last good backup ended"),
    "last_seconds": ("backup_last_duration_seconds", "How long the last good backup took"),
    "last_size": ("backup_last_size_bytes", "Size of the last good backup's object"),
}


def timestamp(text: object) -> float | None:
    moment = parsed(text)
    return None if moment is None else moment.timestamp()


class StateCollector(Collector):
    def __init__(self, state: StateFile, timeout: float | None) -> None:
        self.state = state
        self.timeout = timeout

    def collect(self) -> Iterator[Metric]:
        state = self.state.shown() or {}
        yield from self._databases(state.get("databases") or {})
        totals = state.get("counters") or {}
        for name, help_text in COUNTERS.items():
            yield CounterMetricFamily(f"moonflower_{name}", help_text, value=totals.get(name, 0))
        verdict = health(state, self.timeout)
        yield GaugeMetricFamily(
            "moonflower_healthy", "1 when `moonflower health` would exit 0", value=verdict.ok
        )
        next_run = timestamp(state.get("next_run"))
        if next_run is not None:
            yield GaugeMetricFamily(
                "moonflower_next_run_timestamp_seconds", "When the next run starts", next_run
            )
        yield from self._wal(state.get("wal_stream") or {})
        yield from self._jobs(state.get("jobs") or {})
        yield from self._destinations(state.get("destinations") or {})

    def _destinations(self, stores: dict[str, Any]) -> Iterator[Metric]:
        """Each replica's last store: a backup, a base backup or a WAL file."""
        result = GaugeMetricFamily(
            "moonflower_destination_last_store_result",
            "1 if the last store on the destination succeeded",
            labels=["destination", "optional"],
        )
        success = GaugeMetricFamily(
            "moonflower_destination_last_success_timestamp_seconds",
            "When the destination last took a store",
            labels=["destination"],
        )
        for name, record in sorted(stores.items()):
            optional = "true" if record.get("optional") else "false"
            result.add_metric([name, optional], 1.0 if record.get("ok") else 0.0)
            moment = timestamp(record.get("last_success"))
            if moment is not None:
                success.add_metric([name], moment)
        yield result
        yield success

    def _jobs(self, jobs: dict[str, Any]) -> Iterator[Metric]:
        result = GaugeMetricFamily(
            "moonflower_job_last_result", "1 if the job's last attempt succeeded", labels=["kind"]
        )
        success = GaugeMetricFamily(
            "moonflower_job_last_success_timestamp_seconds",
            "When the job last succeeded",
            labels=["kind"],
        )
        for kind, record in sorted(jobs.items()):
            if not isinstance(record, dict) or "last_ok" not in record:
                continue
            result.add_metric([kind], 1.0 if record.get("last_ok") else 0.0)
            moment = timestamp(record.get("last_success"))
            if moment is not None:
                success.add_metric([kind], moment)
        yield result
        yield success

    def _databases(self, databases: dict[str, Any]) -> Iterator[Metric]:
        families = {
            field: GaugeMetricFamily(f"moonflower_{name}", text, labels=["database"])
            for field, (name, text) in PER_DATABASE.items()
        }
        result = GaugeMetricFamily(
            "moonflower_backup_last_result", "1 if the last backup succeeded", labels=["database"]
        )
        drop = GaugeMetricFamily(
            "moonflower_backup_size_drop",
            "1 if the last backup was much smaller than the ones before",
            labels=["database"],
        )
        for database, record in sorted(databases.items()):
            for field, family in families.items():
                value = record.get(field)
                value = timestamp(value) if field in ("last_attempt", "last_success") else value
                if isinstance(value, int | float):
                    family.add_metric([database], float(value))
            result.add_metric([database], 1.0 if record.get("last_ok") else 0.0)
            drop.add_metric([database], 1.0 if record.get("size_drop") else 0.0)
        yield from families.values()
        yield result
        yield drop

    def _wal(self, stream: dict[str, Any]) -> Iterator[Metric]:
        if not stream:
            return
        yield GaugeMetricFamily(
            "moonflower_wal_stream_up",
            "1 while pg_receivewal runs",
            value=bool(stream.get("running")) and stream_alive(stream),
        )
        yield GaugeMetricFamily(
            "moonflower_wal_waiting_bytes",
            "Completed WAL in the spool not yet in S3",
            value=float(stream.get("waiting_bytes") or 0),
        )
        lag = stream.get("slot_lag_bytes")
        if isinstance(lag, int):
            yield GaugeMetricFamily(
                "moonflower_wal_slot_lag_bytes",
                "WAL the server keeps for the replication slot (asked every 30 s)",
                value=float(lag),
            )
        archived = timestamp(stream.get("last_archived_at"))
        if archived is not None:
            yield GaugeMetricFamily(
                "moonflower_wal_last_upload_timestamp_seconds",
                "When the newest WAL file reached S3",
                value=archived,
            )


def stream_alive(stream: dict[str, Any]) -> bool:
    """The process that published the stream's state still runs (older states: no pid)."""
    pid = stream.get("pid")
    return not isinstance(pid, int) or is_alive(pid)


class ClusterCollectors(Collector):
    """Each cluster's metrics, every sample labelled with its cluster, one family each."""

    def __init__(self, collectors: list[tuple[str, StateCollector]]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for cluster, collector in self.collectors:
            for family in collector.collect():
                into = merged.get(family.name)
                if into is None:
                    into = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = into
                for sample in family.samples:
                    labels = {**sample.labels, "cluster": cluster}
                    into.samples.append(sample._replace(labels=labels))
        yield from merged.values()


def registry_for(configs: list[Config]) -> CollectorRegistry:
    """The metrics of one configuration, or of clusters (labelled `cluster`)."""
    registry = CollectorRegistry(auto_describe=False)
    collectors = [
        (
            config.cluster,
            StateCollector(
                StateFile(state_directory(config.backup)),
                config.backup.timeout.seconds if config.backup.timeout else None,
            ),
        )
        for config in configs
    ]
    if len(collectors) == 1 and collectors[0][0] is None:
        registry.register(collectors[0][1])
    else:
        registry.register(ClusterCollectors([(str(name), each) for name, each in collectors]))
    return registry


def exposition(configs: list[Config]) -> bytes:
    return generate_latest(registry_for(configs))


def textfile_of(config: Config) -> Path:
    """METRICS_TEXTFILE; a cluster's beside it (`moonflower-<cluster>.prom`): node_exporter
    reads every *.prom of the directory, and no cluster overwrites another's."""
    path = config.monitoring.metrics_textfile
    assert path is not None
    if config.cluster is None:
        return path
    return path.with_name(f"{path.stem}-{config.cluster}{path.suffix}")


def publish_metrics(config: Config) -> None:
    """After a run: the textfile and the Pushgateway, when configured; a failure is a
    warning and never changes the run's result."""
    monitoring = config.monitoring
    if monitoring.metrics_textfile is None and monitoring.metrics_pushgateway is None:
        return
    try:
        registry = registry_for([config])
    except (OSError, MoonflowerError) as error:
        log.warning("metrics not written: %s", error)
        return
    if monitoring.metrics_textfile is not None:
        try:
            write_to_textfile(str(textfile_of(config)), registry)
        except OSError as error:
            log.warning("could not write METRICS_TEXTFILE: %s", error.strerror or error)
    if monitoring.metrics_pushgateway is not None:
        try:
            push_to_gateway(
                monitoring.metrics_pushgateway,
                job=PUSH_JOB,
                registry=registry,
                timeout=PUSH_TIMEOUT_SECONDS,
                grouping_key={"cluster": config.cluster} if config.cluster else {},
            )
        except OSError as error:
            log.warning("could not push to METRICS_PUSHGATEWAY: %s", error)
