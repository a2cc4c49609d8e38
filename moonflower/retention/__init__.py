"""Keep rules and the pruner, for logical backups and base backups with their WAL."""
