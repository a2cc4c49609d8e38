"""`--cluster NAME`: which of the configured clusters a command acts on."""

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError
from moonflower.core.exit_status import ExitStatus

CLUSTER_HELP = (
    "with several PostgreSQL servers configured ([cluster.<name>]): act on this one "
    "(`backup`, `check`, `health`, `status` and `run` take every cluster without it)"
)
EVERY_CLUSTER_BY_DEFAULT = frozenset({"backup", "check", "health", "status", "run"})


def chosen_clusters(config: Config, command: str, name: str | None) -> list[Config]:
    """The configurations the command runs with: the one server's, the cluster `--cluster`
    names, or every cluster where the command takes them all."""
    if not config.clusters:
        if name is not None:
            raise ConfigError(
                ["--cluster: no clusters are configured ([cluster.<name>] or CLUSTER_<NAME>_*)"]
            )
        return [config]
    names = [str(cluster.cluster) for cluster in config.clusters]
    if name is not None:
        picked = [cluster for cluster in config.clusters if cluster.cluster == name]
        if not picked:
            raise ConfigError([f'--cluster: "{name}" is not a cluster; one of: {", ".join(names)}'])
        return picked
    if command in EVERY_CLUSTER_BY_DEFAULT or len(config.clusters) == 1:
        return list(config.clusters)
    raise ConfigError(
        [
            f"--cluster: required by `moonflower {command}` when several clusters are "
            f"configured; one of: {', '.join(names)}"
        ]
    )


def default_command(config: Config) -> str:
    """Like the original image: `run` when a schedule is set (for any cluster), else one
    backup now."""
    scheduled = [config, *config.clusters]
    return "run" if any(each.schedule is not None for each in scheduled) else "backup"


def worst(statuses: list[ExitStatus]) -> ExitStatus:
    return max(statuses, default=ExitStatus.OK)
