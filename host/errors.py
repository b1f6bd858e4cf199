"""The host side's one error: what the board refused, or that it stopped answering."""

from __future__ import annotations

from fp8hw.errors import Fp8hwError


class BoardError(Fp8hwError):
    """The board refused a request or stopped answering; the message says which."""
