"""The one error type a user sees: a single line naming what is wrong and how to fix it."""


class PolyinstructError(Exception):
    """A user-facing failure. The CLI prints `error: <message>` and exits 2, never a traceback."""


class ConservationError(PolyinstructError):
    """A stage lost or invented records: kept + rejected != in."""
