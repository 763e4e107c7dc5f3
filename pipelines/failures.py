"""A `UserError` from the core is the user's to fix: show its message as the step's failure, not a trace."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from dualforce_core.errors import UserError


@contextmanager
def user_errors_as_failures() -> Iterator[None]:
    try:
        yield
    except UserError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None
