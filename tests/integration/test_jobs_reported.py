"""Every job is reported like a backup run (quality bar; issue 30's "every job reported"):
a `verify` or `prune` that fails exits 1, sends the failure webhook, shows in the metrics
and makes `health` unhealthy until the same job succeeds. Through real PostgreSQL, moto and
a real webhook receiver."""

from pathlib import Path

from tests.conftest import NASTY_DATABASE
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.webhookserver import WebhookReceiver


def damage_newest(s3: S3Server, bucket: str) -> str:
    client = s3.client()
    (key,) = [
        key for key in s3.keys(bucket) if f"/{NASTY_DATABASE}_" in key and key.endswith(".gz")
    ]
    head = client.head_object(Bucket=bucket, Key=key)
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=head["Metadata"])
    return key


def test_a_failed_verification_is_reported_and_unhealthy_until_one_passes(
    s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path
) -> None:
    metrics = tmp_path / "moonflower.prom"
    with WebhookReceiver() as hooks:
        env = {
            **backup_env,
            "WEBHOOK_FAILURE": hooks.url("/failure"),
            "METRICS_TEXTFILE": str(metrics),
        }
        assert run_moonflower(env=env).returncode == 0
        assert run_moonflower("health", env=env).returncode == 0
        key = damage_newest(s3, bucket)

        failed = run_moonflower("verify", env=env)
        assert failed.returncode == 1
        assert hooks.wait_for(1, 30)
        assert hooks.received[-1].path == "/failure"
        body = hooks.received[-1].body.decode()
        assert "verification failed" in body
        assert key in body
        unhealthy = run_moonflower("health", env=env)
        assert unhealthy.returncode == 1
        assert "verification" in unhealthy.stdout
        assert 'moonflower_job_last_result{kind="verify"} 0.0' in metrics.read_text()

        assert run_moonflower(env=env).returncode == 0  # a new, intact backup
        passed = run_moonflower("verify", env=env)
        assert passed.returncode == 0, passed.stderr
        assert run_moonflower("health", env=env).returncode == 0
        assert 'moonflower_job_last_result{kind="verify"} 1.0' in metrics.read_text()


def test_a_refused_prune_is_reported(s3: S3Server, bucket: str, backup_env: dict[str, str]) -> None:
    with WebhookReceiver() as hooks:
        env = {**backup_env, "WEBHOOK_FAILURE": hooks.url("/failure"), "BACKUP_KEEP_LAST": "1"}
        for _ in range(3):
            assert run_moonflower(env={**env, "BACKUP_KEEP_LAST": "9"}).returncode == 0
        pruned = run_moonflower(
            "prune", NASTY_DATABASE, env={**env, "BACKUP_PRUNE_MAX_DELETE": "10"}
        )
        assert pruned.returncode == 1
        assert hooks.wait_for(1, 30)
        assert "prune failed" in hooks.received[-1].body.decode()
        unhealthy = run_moonflower("health", env=env)
        assert unhealthy.returncode == 1
        assert "prune" in unhealthy.stdout
        dry = run_moonflower("prune", "--dry-run", env=env)
        assert dry.returncode == 0
        assert len(hooks.received) == 1  # a dry run answers its caller only
