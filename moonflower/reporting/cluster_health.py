"""Health with several clusters: each cluster's verdict from its own status file, and one
verdict for all of them, unhealthy if any cluster is."""

from moonflower.config.model import Config
from moonflower.core.state_dir import state_directory
from moonflower.reporting.health import Health, health
from moonflower.reporting.status_file import StateFile


def overdue_after(config: Config) -> float | None:
    """A run going on longer than BACKUP_TIMEOUT is reported as a problem."""
    timeout = config.backup.timeout
    return None if timeout is None else timeout.seconds


def health_of(config: Config) -> Health:
    return health(StateFile(state_directory(config.backup)).shown(), overdue_after(config))


def overall(configs: list[Config]) -> Health:
    """One line per cluster; unhealthy first."""
    verdicts = [(config.cluster or "", health_of(config)) for config in configs]
    if len(verdicts) == 1 and not verdicts[0][0]:
        return verdicts[0][1]
    lines = [(verdict.ok, f"cluster {name}: {verdict.reason}") for name, verdict in verdicts]
    unhealthy = [line for ok, line in lines if not ok]
    if unhealthy:
        return Health(False, "; ".join(unhealthy))
    return Health(True, "; ".join(line for _, line in lines))
