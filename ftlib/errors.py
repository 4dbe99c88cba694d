"""One map from failures to exit codes for every CLI command: 0 ok, 1 data or job failure, 2 usage or config.

Each known failure prints one line naming the cause and the fix; nothing shows a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

DATA_ERROR = 1
USAGE_ERROR = 2
INTERRUPTED = 130


class StageError(RuntimeError):
    """A stage that must fail (strict ingest with rejects, validation errors); the report is already written."""


class ProviderError(RuntimeError):
    """A provider refusal or failure a user can act on; the message names the cause and the fix."""


class JobNotFound(ProviderError):
    """The provider has no job with this id (deleted, expired, or another account or endpoint)."""


class ConfigError(ProviderError):
    """Missing or wrong configuration (credentials, endpoint, role, bucket, tokenizer), raised before any upload."""


class FormatError(ValueError):
    """A line that cannot be decoded, or an example a format cannot express.

    `field` is a dotted path into the line (e.g. "messages[2].role") and the message ends with the fix.
    """

    def __init__(self, message: str, field: str | None = None, code: str = "bad_record") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


# First match wins: subclasses before their bases.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, USAGE_ERROR),
    (ProviderError, DATA_ERROR),
    (StageError, DATA_ERROR),
    (FormatError, DATA_ERROR),
    (FileNotFoundError, USAGE_ERROR),
    (FileExistsError, USAGE_ERROR),
    (IsADirectoryError, USAGE_ERROR),
    (NotADirectoryError, USAGE_ERROR),
    (PermissionError, USAGE_ERROR),
    (ValueError, USAGE_ERROR),
    (KeyError, USAGE_ERROR),
)


def exit_code(e: BaseException) -> int | None:
    return next((code for kind, code in EXIT_CODES if isinstance(e, kind)), None)


def message(e: BaseException) -> str:
    """The one line a user sees; redacted, so an exception that quotes input never prints a likely secret."""
    from ftlib.secret_scan import redact

    return redact(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e))


@contextmanager
def exit_codes(interrupted: str = "interrupted") -> Iterator[None]:
    """Known failures -> one line on stderr and the documented exit code (typer.Exit)."""
    import typer
    from rich.console import Console

    con = Console(stderr=True, highlight=False)
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        con.print(interrupted, markup=False, soft_wrap=True)
        raise typer.Exit(INTERRUPTED) from None
    except Exception as e:
        code = exit_code(e)
        if code is None:
            raise
        con.print(f"error: {message(e)}", markup=False, emoji=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code) from None
