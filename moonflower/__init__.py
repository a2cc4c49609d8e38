"""Moonflower: PostgreSQL backups to S3-compatible storage."""

__version__ = "2.0.0.dev0"
