"""One job's outcome made visible: the status file, webhooks, notifications, metrics,
health and the status page."""
