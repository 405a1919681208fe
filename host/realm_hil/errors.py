"""The project's own error types: what the CLI prints in one line (exit 2) instead of a traceback.

Anything else that escapes a command is a bug and keeps its traceback.
"""


class RealmError(Exception):
    """A problem the user can fix (missing board, bad bitstream, bad config); not a bug."""


class InputError(RealmError, ValueError):
    """Bad input: an option, argument, file or request the user (or a remote client) got wrong.

    A ValueError too, so library callers that catch ValueError for bad arguments keep working.
    """


class BackendUnavailable(RealmError):
    """The requested backend cannot run on this machine."""
