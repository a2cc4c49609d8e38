"""What `moonflower sync` does for any kind of object: list what each destination holds,
and copy to each target what another holds and it lacks, from the first source whose copy
passes its checks."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.storage.destination import Destination

Item = TypeVar("Item")


@dataclass(frozen=True)
class Copy:
    target: str
    key: str
    result: str
    """"copied from <source>", "would copy from <source>", or "failed: <why>"."""

    @property
    def ok(self) -> bool:
        return not self.result.startswith("failed")


def catch_up(
    destinations: list[Destination],
    targets: list[Destination],
    listing: Callable[[Destination], dict[str, Item]],
    key_there: Callable[[str, Destination, Item, Destination], str],
    copy: Callable[[Destination, Item, Destination, str], None],
    dry_run: bool,
) -> list[Copy]:
    """`listing`: a destination's objects by a name the same on every destination;
    `key_there`: the key an object (by name, source and item) gets on a target; `copy`:
    copies one, raising when it cannot (nothing is then left on the target)."""
    listings: dict[str, dict[str, Item]] = {}
    copies = []
    for destination in destinations:
        try:
            listings[destination.name] = listing(destination)
        except MoonflowerError as error:
            log.error("%s cannot be listed: %s", destination.name, error)
            copies.append(Copy(destination.name, "-", f"failed: cannot be listed: {error}"))
    for target in targets:
        have = listings.get(target.name)
        if have is None:
            continue
        wanted: dict[str, list[tuple[Destination, Item]]] = {}
        for source in destinations:
            for name, item in listings.get(source.name, {}).items():
                if source is not target and name not in have:
                    wanted.setdefault(name, []).append((source, item))
        for name, sources in sorted(wanted.items()):
            key = key_there(name, sources[0][0], sources[0][1], target)
            if dry_run:
                copies.append(Copy(target.name, key, f"would copy from {sources[0][0].name}"))
                continue
            copies.append(Copy(target.name, key, first_good(sources, target, key, copy)))
    return copies


def first_good(
    sources: list[tuple[Destination, Item]],
    target: Destination,
    key: str,
    copy: Callable[[Destination, Item, Destination, str], None],
) -> str:
    reasons = []
    for source, item in sources:
        try:
            copy(source, item, target, key)
        except MoonflowerError as error:
            log.warning("copying %s from %s failed: %s", key, source.name, error)
            reasons.append(f"{source.name}: {error}")
            continue
        log.info("copied %s from %s to %s", key, source.name, target.name)
        return f"copied from {source.name}"
    return "failed: " + "; ".join(reasons)
