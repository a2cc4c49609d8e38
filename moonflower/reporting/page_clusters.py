"""The status page for the one server, or for every cluster: each cluster's health at the
top (unhealthy first), then a section per cluster with its own page."""

from typing import Protocol

from moonflower.config.model import Config
from moonflower.core.state_dir import state_directory
from moonflower.reporting.cluster_health import health_of
from moonflower.reporting.page import PageSource, page_document
from moonflower.reporting.page_text import esc, folded
from moonflower.reporting.status_file import StateFile
from moonflower.storage.destination import destinations_of


class Page(Protocol):
    def render(self) -> str: ...


def source_of(config: Config) -> PageSource:
    state = StateFile(state_directory(config.backup))
    return PageSource(config, destinations_of(config)[0], state)


class ClustersPage:
    def __init__(self, configs: list[Config]) -> None:
        self.sources = [(config, source_of(config)) for config in configs]

    def render(self) -> str:
        verdicts = [(config, health_of(config)) for config, _ in self.sources]
        rows = "".join(
            f"<tr><td><a href=#cluster-{esc(config.cluster)}>{esc(config.cluster)}</a></td>"
            f"<td class={'ok' if verdict.ok else 'failed'}>{folded(verdict.reason)}</td></tr>"
            for config, verdict in sorted(
                verdicts, key=lambda pair: (pair[1].ok, pair[0].cluster or "")
            )
        )
        parts = [f"<table class=clusters><tr><th>cluster</th><th>health</th></tr>{rows}</table>"]
        for config, source in self.sources:
            parts.append(
                f"<section id=cluster-{esc(config.cluster)}>"
                f"<h2 class=cluster>cluster {esc(config.cluster)}</h2>{source.body()}</section>"
            )
        return page_document("\n".join(parts))


def page_of(configs: list[Config]) -> Page:
    if len(configs) == 1 and configs[0].cluster is None:
        return source_of(configs[0])
    return ClustersPage(configs)
