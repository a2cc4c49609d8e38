"""How operators see the runs without reading logs: the per-database history in the status
file, Prometheus metrics, notifications and the status page."""
