"""Keep rules (GFS retention) end to end: backups with past times in their keys on a moto S3
server over HTTP, `prune --dry-run` and its JSON, a real prune in a versioned bucket, the
safety limit, and base backups with their WAL."""

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.webhookserver import WebhookReceiver

STAMP = "%Y-%m-%dT%H:%M:%S.000Z"


def days_ago(days: int, hour: int = 1) -> datetime:
    today = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def backup_key(database: str, moment: datetime, prefix: str = "nightly") -> str:
    return f"{prefix}/{database}_{moment.strftime(STAMP)}.sql.gz"


def put(s3: S3Server, bucket: str, key: str, body: bytes = b"\x1f\x8b backup") -> None:
    s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def all_versions(s3: S3Server, bucket: str) -> dict[str, int]:
    listing = s3.client().list_object_versions(Bucket=bucket)
    counts: dict[str, int] = {}
    for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        counts[entry["Key"]] = counts.get(entry["Key"], 0) + 1
    return counts


def nightly_for_days(s3: S3Server, bucket: str, database: str, days: int) -> list[str]:
    """One backup a night for the last `days` nights, oldest first."""
    keys = [backup_key(database, days_ago(day)) for day in range(days, 0, -1)]
    for key in keys:
        put(s3, bucket, key)
    return keys


def test_dry_run_shows_every_backup_with_its_rules_and_deletes_nothing(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    keys = nightly_for_days(s3, bucket, "ghost", 20)
    backup_env.update(BACKUP_KEEP_DAILY="3", BACKUP_KEEP_LAST="1", BACKUP_PRUNE_MAX_DELETE="100")

    result = run_moonflower("prune", "--dry-run", "--json", "--keep-weekly", "2", env=backup_env)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True
    [series] = document["series"]
    assert series["database"] == "ghost"
    by_key = {entry["key"]: entry for entry in series["backups"]}
    assert set(by_key) == set(keys)
    assert by_key[keys[-1]]["reasons"][:2] == ["last", "daily"]
    assert by_key[keys[-2]]["reasons"] == ["daily"]
    assert by_key[keys[-3]]["reasons"] == ["daily"]
    weekly = [key for key, entry in by_key.items() if "weekly" in entry["reasons"]]
    assert len(weekly) == 2
    kept = {key for key, entry in by_key.items() if entry["keep"]}
    assert kept == set(keys[-3:]) | set(weekly)
    assert all(by_key[key]["result"] == "remove" for key in set(keys) - kept)
    assert sorted(s3.keys(bucket)) == sorted(keys)

    table = run_moonflower("prune", "--dry-run", "--keep-weekly", "2", env=backup_env)

    assert table.returncode == 0, table.stderr
    assert "keep (last, daily" in table.stdout
    assert "remove" in table.stdout
    assert f"would delete {len(keys) - len(kept)} of {len(keys)} backups" in table.stdout
    assert sorted(s3.keys(bucket)) == sorted(keys)


def test_prune_removes_every_version_of_what_no_rule_keeps_and_nothing_else(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    s3.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = nightly_for_days(s3, bucket, "ghost", 6)
    put(s3, bucket, keys[0])  # overwritten: two versions of the oldest
    other = nightly_for_days(s3, bucket, "other", 2)
    unrelated = ["nightly/notes.txt", f"nightly/sub/{keys[0].split('/')[1]}"]
    for key in unrelated:
        put(s3, bucket, key)
    backup_env.update(BACKUP_KEEP_LAST="3", BACKUP_PRUNE_MAX_DELETE="50")

    result = run_moonflower("prune", env=backup_env)

    assert result.returncode == 0, result.stderr
    versions = all_versions(s3, bucket)
    assert set(versions) == set(keys[-3:]) | set(other) | set(unrelated)
    assert all(count == 1 for count in versions.values())
    assert "deleted 3 of 8 backups" in result.stdout
    state = Path(backup_env["BACKUP_STATE_DIR"]) / f"moonflower-state-{os.getuid()}.json"
    assert json.loads(state.read_text())["counters"]["pruned_backups"] == 3  # for the metrics


def test_the_safety_limit_refuses_a_big_prune_until_yes(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    keys = nightly_for_days(s3, bucket, "ghost", 10)
    small = nightly_for_days(s3, bucket, "small", 2)
    backup_env["BACKUP_KEEP_DAILY"] = "2"  # meant 20: ghost would lose 8 of 10

    refused = run_moonflower("prune", env=backup_env)

    assert refused.returncode == 1
    assert "BACKUP_PRUNE_MAX_DELETE" in refused.stderr
    assert "8 of the 10 backups of ghost" in refused.stdout
    assert "--yes" in refused.stdout
    assert "Traceback" not in refused.stderr
    assert sorted(s3.keys(bucket)) == sorted(keys + small)

    forced = run_moonflower("prune", "--yes", env=backup_env)

    assert forced.returncode == 0, forced.stderr
    assert sorted(s3.keys(bucket)) == sorted(keys[-2:] + small)


def test_a_scheduled_prune_over_the_limit_never_fails_the_backup_and_is_reported(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    old = nightly_for_days(s3, bucket, "second", 4)
    with WebhookReceiver() as receiver:
        backup_env.update(
            PG_DATABASES="second",
            BACKUP_KEEP_LAST="1",
            WEBHOOK_SUCCESS=receiver.url("/ok"),
            WEBHOOK_POST_LOGS="true",
        )
        result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "pruning expired backups failed: BACKUP_PRUNE_MAX_DELETE" in result.stdout
    [success] = receiver.received
    assert "BACKUP_PRUNE_MAX_DELETE" in success.body.decode().splitlines()[-1]
    assert set(old) < set(s3.keys(bucket))
    assert len(s3.keys(bucket)) == 5


def test_a_run_with_keep_rules_prunes_and_claims_no_expiry_date(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    old = nightly_for_days(s3, bucket, "second", 3)
    backup_env.update(PG_DATABASES="second", BACKUP_KEEP_DAILY="3", S3_EXPIRES_IN="1 day")

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    keys = s3.keys(bucket)
    [new] = [key for key in keys if key not in old]
    assert sorted(keys) == sorted([*old[-2:], new])
    head = s3.client().head_object(Bucket=bucket, Key=new)
    assert "expires-at" not in head["Metadata"]
    assert not head.get("Expires")
    assert not head.get("ExpiresString")
    listing = run_moonflower("list", "--json", env=backup_env)
    assert all(entry["expires"] is None for entry in json.loads(listing.stdout))


def test_the_globals_are_a_series_of_their_own(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    databases = nightly_for_days(s3, bucket, "ghost", 3)
    globals_ = nightly_for_days(s3, bucket, "_globals", 3)
    backup_env["BACKUP_KEEP_LAST"] = "2"

    result = run_moonflower("prune", "--json", env=backup_env)

    assert result.returncode == 0, result.stderr
    assert {series["kind"] for series in json.loads(result.stdout)["series"]} == {
        "logical",
        "globals",
    }
    assert sorted(s3.keys(bucket)) == sorted(databases[1:] + globals_[1:])


def describe_base(moment: datetime, start_segment: int) -> tuple[str, dict[str, object]]:
    label = moment.strftime(STAMP)
    key = f"nightly/base/{label}/base.tar.zst"
    record = {
        "label": label,
        "key": key,
        "start_lsn": f"0/{start_segment:X}000028",
        "stop_lsn": f"0/{start_segment:X}000100",
        "timeline": 1,
        "start_time": moment.isoformat(),
        "stop_time": (moment + timedelta(minutes=1)).isoformat(),
        "server_version": "18.0",
        "server_major": 18,
        "segment_size": 16 * 1024 * 1024,
        "size": 10,
        "sha256": "0" * 64,
        "compression": "zstd",
        "encrypted": False,
    }
    return key, record


def test_base_backups_follow_the_rules_and_take_their_unneeded_wal_along(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    bases = [
        describe_base(days_ago(days), segment) for days, segment in ((30, 1), (20, 5), (10, 9))
    ]
    for key, record in bases:
        put(s3, bucket, key)
        put(s3, bucket, key.rsplit("/", 1)[0] + "/backup.json", json.dumps(record).encode())
    wal = [f"nightly/wal/0000000100000000{segment:08X}.zst" for segment in range(1, 13)]
    for key in [*wal, "nightly/wal/00000002.history.zst"]:
        put(s3, bucket, key)
    backup_env["BACKUP_KEEP_LAST"] = "2"

    result = run_moonflower("prune", env=backup_env)

    assert result.returncode == 0, result.stderr
    keys = set(s3.keys(bucket))
    oldest_folder = bases[0][0].rsplit("/", 1)[0]
    assert not any(key.startswith(oldest_folder) for key in keys)
    assert {bases[1][0], bases[2][0]} <= keys
    assert keys & set(wal) == set(wal[4:])  # segments 1 to 4 came before the oldest kept
    assert "nightly/wal/00000002.history.zst" in keys
