"""The smallest complete set of settings, for tests of the configuration and what reads it."""

REQUIRED = {
    "PG_DATABASES": "app",
    "PG_HOST": "db.internal",
    "PG_USER": "backup",
    "PG_PASSWORD": "pg-secret",
    "S3_ENDPOINT": "https://s3.example.test",
    "S3_BUCKET": "backups",
    "S3_ACCESS_KEY": "AKIAEXAMPLE",
    "S3_SECRET_KEY": "s3-secret",
}
