"""The exception hierarchy. Messages are for operators: one line, no secrets."""

from collections.abc import Sequence


class MoonflowerError(Exception):
    """Base of every error Moonflower raises on purpose."""


class ConfigError(MoonflowerError):
    """The configuration is unusable. Carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = [one_line(problem) for problem in problems]
        super().__init__("; ".join(self.problems))


MAX_PROBLEM_LENGTH = 400


def one_line(text: str) -> str:
    """Control characters escaped and the length bounded, so a message stays one line."""
    escaped = "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode()
        for char in text
    )
    if len(escaped) > MAX_PROBLEM_LENGTH:
        escaped = escaped[: MAX_PROBLEM_LENGTH - 3] + "..."
    return escaped


class StageFailed(MoonflowerError):
    """An external process of a pipeline failed."""

    def __init__(self, stage: str, exit_code: int, stderr_tail: str) -> None:
        self.stage = stage
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        detail = f": {stderr_tail}" if stderr_tail else ""
        super().__init__(f"{stage} failed ({describe_exit(exit_code)}){detail}")


class TimedOut(MoonflowerError):
    """A pipeline ran past its time limit and was stopped."""

    def __init__(self, stage: str, seconds: float) -> None:
        self.stage = stage
        super().__init__(f"{stage} was still running after {seconds:.0f} s and was stopped")


class DumpError(MoonflowerError):
    """The dump could not be made or its artifact is not sound."""


class Abandoned(MoonflowerError):
    """The run was given up (a signal arrived); this part stopped without finishing."""

    def __init__(self) -> None:
        super().__init__("abandoned: the run was interrupted")


class StorageError(MoonflowerError):
    """S3 refused or could not be reached."""


class KeyTaken(StorageError):
    """S3 already holds an object under the key, not written by this run; it is left alone."""


class Unsupported(StorageError):
    """The S3 store does not implement something the request used (HTTP 501)."""


class WalError(MoonflowerError):
    """Archiving or fetching a WAL file failed, or the archive holds something it must not."""


class RestoreError(MoonflowerError):
    """A restore (or a verification) stopped at `step`."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"{step}: {message}")


def describe_exit(exit_code: int) -> str:
    if exit_code < 0:
        return f"killed by signal {-exit_code}"
    return f"exit status {exit_code}"


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException so that no `except Exception` swallows it."""
