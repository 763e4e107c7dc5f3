"""User-facing errors: the CLI prints their message (no traceback) and exits with status 2."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad config, missing weights, bad input. The message says how."""
