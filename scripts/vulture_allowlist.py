"""Names vulture cannot see being used: they are called by libraries, not by Moonflower.

`make lint` runs vulture over moonflower/ and this file.
"""

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.config.model import ChecksumMode, NotifyOn, RetentionConfig
from moonflower.core.logs import ContextAndRedaction
from moonflower.daemon.scheduler import CronJob
from moonflower.pitr.wal_stream import StreamState
from moonflower.reporting.metrics import StateCollector
from moonflower.storage.slices import FileSlice

ChecksumMode.WHEN_REQUIRED  # chosen by S3_CHECKSUM=when_required, passed on to botocore
ContextAndRedaction.filter  # logging writes record.msg, .args and .exc_text back
_record = ContextAndRedaction()
_record.msg, _record.args, _record.exc_text  # type: ignore[attr-defined]
CronJob.should_run  # read by schedule.Scheduler.run_pending
CronJob._schedule_next_run  # called by schedule.Job.do and after each run
FileSlice.readable  # io.RawIOBase protocol, used by botocore when it sends a part
FileSlice.seekable
FileSlice.tell
StreamState.last_archived  # read through dataclasses.asdict into the status file
StreamState.waiting_bytes  # read through dataclasses.asdict into the status file
StreamState.restarts  # read through dataclasses.asdict into the status file
StreamState.running  # read through dataclasses.asdict into the status file
BaseBackupRecord.start_time  # written to backup.json for operators
RetentionConfig.hourly  # the keep rules are read by name (RetentionConfig.rules, KEEP_RULES)
RetentionConfig.daily
RetentionConfig.weekly
RetentionConfig.monthly
RetentionConfig.yearly
NotifyOn.ALWAYS  # chosen by NOTIFY_ON=always
StateCollector.collect  # called by prometheus_client's registry at every scrape
StreamState.last_archived_at  # read through dataclasses.asdict into the status file
_server = object()
_server.daemon_threads, _server.sys_version  # type: ignore[attr-defined]  # http.server reads them
_handler = object()
_handler.log_message, _handler.do_GET  # type: ignore[attr-defined]  # called by http.server
StreamState.slot_lag_bytes  # read through dataclasses.asdict into the status file
StreamState.last_error  # read through dataclasses.asdict into the status file
_server.address_family  # type: ignore[attr-defined]  # read by socketserver
_server.handle_error  # type: ignore[attr-defined]  # called by socketserver
