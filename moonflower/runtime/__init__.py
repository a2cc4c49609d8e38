"""The long-running process: signals and lifecycle, the cron scheduler, the status file."""
