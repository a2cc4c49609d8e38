"""Point-in-time recovery: base backups and incremental chains, the WAL archive and stream,
the recovery window, restore-cluster."""
