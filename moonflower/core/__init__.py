"""The ground everything stands on: errors and exit statuses, logs and redaction, signals and
shutdown, counters, ownership of files by live processes, the state directory. Imports nothing
above it."""
