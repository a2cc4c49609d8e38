"""Restoring the globals without touching the roles a server already has.

pg_dumpall writes one statement per line for roles: CREATE ROLE, ALTER ROLE (attributes and
password, or settings), COMMENT ON ROLE and GRANT (memberships). Replayed as they are, they
would reset the passwords and privileges of roles that exist on the target. Here they are
kept only for roles the target does not have yet, unless the operator asks to overwrite.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

IDENTIFIER = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
ROLE_STATEMENT = re.compile(
    rf"^(?:CREATE ROLE|ALTER ROLE|COMMENT ON ROLE|SECURITY LABEL FOR \S+ ON ROLE) ({IDENTIFIER})"
)
MEMBERSHIP = re.compile(rf"^GRANT {IDENTIFIER} TO ({IDENTIFIER})")


def unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()


@dataclass
class RoleFilter:
    """Which roles a globals dump would change, and the dump without the existing ones'."""

    existing: frozenset[str]
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def role_of(self, line: str) -> str | None:
        """The role a role statement changes (the member, for a membership grant)."""
        found = ROLE_STATEMENT.match(line) or MEMBERSHIP.match(line)
        return unquote(found.group(1)) if found else None

    def lines(self, sql: Iterable[str]) -> Iterable[str]:
        for line in sql:
            role = self.role_of(line)
            if role is None:
                yield line
                continue
            if role in self.existing:
                if role not in self.kept:
                    self.kept.append(role)
                continue
            if line.startswith("CREATE ROLE ") and role not in self.created:
                self.created.append(role)
            yield line
