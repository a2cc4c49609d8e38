"""Watching every process while a command runs, to prove secrets stay out of argv and env."""

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.runner import RUN_TIMEOUT_SECONDS, clean_environment, moonflower_command


def read_proc(pid: str, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def descendants(root: int) -> set[str]:
    children: dict[str, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
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
    process = subprocess.Popen(
        moonflower_command(),
        env=clean_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    leaks: list[str] = []
    seen: set[str] = set()
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        own_cmdline = read_proc(str(process.pid), "cmdline")
        own_environ = read_proc(str(process.pid), "environ")
        # A child between fork and exec still shows our own argv and environment: skip those.
        children = {p for p in descendants(process.pid) if read_proc(p, "cmdline") != own_cmdline}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
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
