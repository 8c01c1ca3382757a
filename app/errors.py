"""One error tree with stable codes that clients can act on.

    AppError                      INTERNAL
    ├── InvalidInput              INVALID_INPUT
    │   └── InvalidStrategy       INVALID_INPUT (bad strategy file, refused at start-up)
    ├── Unauthenticated           UNAUTHENTICATED
    ├── Forbidden                 FORBIDDEN
    ├── NotFound                  NOT_FOUND
    ├── Conflict                  CONFLICT
    ├── Suppressed                SUPPRESSED
    ├── DatabaseUnavailable       DATABASE_UNAVAILABLE
    │   └── ErasureKeyMismatch    DATABASE_UNAVAILABLE (this process's erasure key is not the database's)
    ├── Timeout                   TIMEOUT
    └── InstallationError         INTERNAL (a file the package ships is missing: reinstall)

Messages never carry raw identity values (phone numbers, emails, account ids): they are personal data.
"""

from __future__ import annotations


class AppError(Exception):
    """Base of every error idgraph raises on purpose."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AppError):
    """The request cannot be used as given."""

    code = "INVALID_INPUT"


class InvalidStrategy(InvalidInput):
    """The strategy file has an unknown key or a bad value."""


class Unauthenticated(AppError):
    """No credentials, or credentials that are not valid."""

    code = "UNAUTHENTICATED"


class Forbidden(AppError):
    """Valid credentials without the scope the operation needs."""

    code = "FORBIDDEN"


class NotFound(AppError):
    """A named profile, receipt or other object does not exist."""

    code = "NOT_FOUND"


class Conflict(AppError):
    """The operation would break a rule of the strategy (for example two account ids on one customer)."""

    code = "CONFLICT"


class Suppressed(AppError):
    """Every value in the request belongs to an erased person."""

    code = "SUPPRESSED"


class DatabaseUnavailable(AppError):
    """Neo4j cannot be reached."""

    code = "DATABASE_UNAVAILABLE"


class ErasureKeyMismatch(DatabaseUnavailable):
    """This process's erasure key does not match the fingerprint the database holds (or a rotation is under way):
    it would hash erased values differently, so it must not write. Never retried."""


class Timeout(AppError):
    """The database did not answer within the request's time budget."""

    code = "TIMEOUT"


class InstallationError(AppError):
    """A file idgraph ships with (a Cypher statement, a migration, a browser library) is missing: the installation is
    incomplete. Never a database problem, so never reported as one."""
