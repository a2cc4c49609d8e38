"""requirements.lock, from which the image and `make`'s virtualenv install the runtime
dependencies, agrees with pyproject.toml: every dependency pinned, within its range, with
hashes, and nothing pointing pip at another index."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CHECKOUT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)")


def pins() -> dict[str, tuple[str, list[str]]]:
    """Each pinned package: its version and its hashes."""
    found: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (CHECKOUT / "requirements.lock").read_text().splitlines():
        pinned = PIN.match(line)
        if pinned:
            current = canonicalize_name(pinned.group(1))
            found[current] = (pinned.group(2), [])
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            assert current is not None
            found[current][1].append(digest)
    return found


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    locked = pins()
    problems = []
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{name}: not in requirements.lock")
        elif not requirement.specifier.contains(locked[name][0], prereleases=True):
            problems.append(f"{name}: {locked[name][0]} is outside {requirement.specifier}")
    assert problems == []


def test_every_pin_has_hashes_and_no_other_index_is_named() -> None:
    locked = pins()
    assert locked
    assert [name for name, (_, hashes) in locked.items() if not hashes] == []
    text = (CHECKOUT / "requirements.lock").read_text()
    assert not re.search(r"^\s*(--index-url|--extra-index-url|--find-links|-f |-i )", text, re.M)


def test_this_virtualenv_runs_the_locked_versions() -> None:
    locked = pins()
    installed = {
        canonicalize_name(requirement.name): importlib.metadata.version(requirement.name)
        for requirement in runtime_requirements()
    }
    differing = {
        name: (version, locked[name][0])
        for name, version in installed.items()
        if name in locked and version != locked[name][0]
    }
    assert differing == {}, "run `make venv` again (requirements.lock changed)"
