"""Watching every process while a command runs, to prove secrets stay out of argv and env."""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import all_pids, read_proc
from tests.support.runner import RUN_TIMEOUT_SECONDS, start_moonflower


def descendants(root: int) -> set[str]:
    children: dict[str, list[str]] = {}
    for entry in all_pids():
        fields = read_proc(entry, "stat").decode(errors="replace").rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            children.setdefault(fields[1], []).append(entry)
    found: set[str] = set()
    pending = [str(root)]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


@dataclass
class Watch:
    returncode: int
    stdout: bytes
    stderr: bytes
    leaks: list[str] = field(default_factory=list)
    programs_seen: set[str] = field(default_factory=set)


def watch_moonflower(env: Mapping[str, str], secrets: Sequence[str]) -> Watch:
    """Run bin/moonflower; scan all argv, and the environment of its children, until it ends."""
    needles = [secret.encode() for secret in secrets]
    process = start_moonflower(env=env, text=False)
    leaks: list[str] = []
    seen: set[str] = set()
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        own_cmdline = read_proc(str(process.pid), "cmdline")
        own_environ = read_proc(str(process.pid), "environ")
        # A child between fork and exec still shows our own argv and environment: skip those.
        children = {p for p in descendants(process.pid) if read_proc(p, "cmdline") != own_cmdline}
        for pid in all_pids():
            cmdline = read_proc(pid, "cmdline")
            if pid in children and cmdline:
                seen.add(Path(cmdline.split(b"\0")[0].decode(errors="replace")).name)
            environ = read_proc(pid, "environ") if pid in children else b""
            if environ == own_environ and read_proc(pid, "cmdline") in (own_cmdline, b""):
                environ = b""  # still the forked copy of ours, before (or during) exec
            sources = [cmdline, environ]
            for source in sources:
                for needle in needles:
                    if needle in source:
                        leaks.append(f"pid {pid} ({cmdline[:120]!r}): {source[:120]!r}")
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    return Watch(process.returncode, stdout, stderr, leaks, seen)
