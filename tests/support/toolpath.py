"""A PATH without some programs: to run Moonflower as on a machine where they are not
installed (igzip, pigz), whatever this machine has."""

import os
from pathlib import Path


def path_without(directory: Path, *missing: str) -> str:
    """A directory of links to every program on the current PATH except `missing`, to use as
    the whole PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        try:
            programs = list(Path(entry).iterdir())
        except OSError:
            continue
        for program in programs:
            link = directory / program.name
            if program.name in missing or link.exists() or not os.access(program, os.X_OK):
                continue
            link.symlink_to(program)
    return str(directory)
