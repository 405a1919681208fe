"""Errors that mean "the user asked for something that cannot be done": the CLI prints them in one line."""


class RealmError(Exception):
    """A problem the user can fix (missing board, bad bitstream, bad config); not a bug."""


class BackendUnavailable(RealmError):
    """The requested backend cannot run on this machine."""
