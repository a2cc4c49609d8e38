"""The exception hierarchy. Messages are for operators: one line, no secrets."""

from collections.abc import Sequence


class MoonflowerError(Exception):
    """Base of every error Moonflower raises on purpose."""


class ConfigError(MoonflowerError):
    """The configuration is unusable. Carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class StageFailed(MoonflowerError):
    """An external process of a pipeline failed."""

    def __init__(self, stage: str, exit_code: int, stderr_tail: str) -> None:
        self.stage = stage
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        detail = f": {stderr_tail}" if stderr_tail else ""
        super().__init__(f"{stage} failed ({describe_exit(exit_code)}){detail}")


class DumpError(MoonflowerError):
    """The dump could not be made or its artifact is not sound."""


class Abandoned(MoonflowerError):
    """The run was given up (a signal arrived); this part stopped without finishing."""

    def __init__(self) -> None:
        super().__init__("abandoned: the run was interrupted")


class StorageError(MoonflowerError):
    """S3 refused or could not be reached."""


def describe_exit(exit_code: int) -> str:
    if exit_code < 0:
        return f"killed by signal {-exit_code}"
    return f"exit status {exit_code}"


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException so that no `except Exception` swallows it."""
