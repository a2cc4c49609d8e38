"""Logical backups: dump plans, the backup run, readback, restore, verify and the size
check."""
