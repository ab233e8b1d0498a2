"""The failures a user can fix, shared by every step: logged as one line, without a traceback."""


class UserFacingError(RuntimeError):
    """A failure the user can fix (bad input file, nothing deployed yet...): logged without a traceback."""
