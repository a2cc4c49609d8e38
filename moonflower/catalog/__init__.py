"""What a bucket holds, without policy: key names and the typed records of logical
backups, base backups and WAL."""
