"""Variables that look like Moonflower's settings but are none of them: the typos that would
otherwise turn a feature off without a word."""

import difflib
from collections.abc import Mapping

from moonflower.config import settings as s
from moonflower.config.clusters import CLUSTERS
from moonflower.config.replicas import REPLICAS

UNPREFIXED_LIKENESS = 0.85
"""How alike a name without one of Moonflower's prefixes must be to a setting's to be taken
for its typo (SCHEDUEL for SCHEDULE: 0.875; PGHOST for PG_HOST is libpq's, left alone)."""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Variables that look like Moonflower's but are not: typos that would silently turn a
    feature off (ENCRYPTION_PASSPRASE leaves backups unencrypted, SCHEDUEL the scheduler)."""
    problems = []
    replicas = REPLICAS.known_variables(REPLICAS.names(environ, {}))
    in_clusters = CLUSTERS.known_variables(CLUSTERS.names(environ, {}))
    for name in sorted(environ):
        if name in s.KNOWN_NAMES or name in s.FOREIGN_NAMES or name in replicas:
            continue
        if name in in_clusters:
            continue
        if name.startswith(REPLICAS.prefix):
            candidates = sorted(replicas) or REPLICAS.guesses(name)
            nearest = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        elif name.startswith(CLUSTERS.prefix):
            if not looks_like_a_cluster_setting(name):
                continue  # CLUSTER_NAME, CLUSTER_DOMAIN: another tool's
            candidates = sorted(in_clusters) or CLUSTERS.guesses(name)
            nearest = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        elif name.startswith(s.OWNED_PREFIXES):
            nearest = difflib.get_close_matches(name, s.KNOWN_NAMES, n=1, cutoff=0.6)
        elif is_libpq_variable(name):
            continue
        else:
            nearest = difflib.get_close_matches(
                name, s.KNOWN_NAMES, n=1, cutoff=UNPREFIXED_LIKENESS
            )
            if not nearest:
                continue
        hint = f"did you mean {nearest[0]}?" if nearest else "see docs/configuration.md"
        problems.append(f"{name}: not a Moonflower setting; {hint}")
    return problems


def looks_like_a_cluster_setting(name: str) -> bool:
    """CLUSTER_<NAME>_ followed by one of Moonflower's own prefixes, or a schedule."""
    rest = name[len(CLUSTERS.prefix) :]
    return "SCHED" in rest or any(f"_{prefix}" in rest for prefix in s.OWNED_PREFIXES)


def is_libpq_variable(name: str) -> bool:
    """PGHOST, PGPASSWORD, PGSSLMODE...: libpq's own, which other tools in the same
    container may use (Moonflower never passes them on to its children)."""
    return name.startswith("PG") and not name.startswith("PG_")
