"""Process exit statuses: the contract with shells, systemd and orchestrators."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    BACKUP_FAILED = 1
    BAD_CONFIGURATION = 2
    INTERRUPTED = 130
    TERMINATED = 143
