"""The error raised for bad input data (a corrupt, truncated or wrongly laid out file or folder).

`DataError` is a ValueError, so code that catches ValueError keeps working; the command line tells it
apart from a usage error: exit code 1 (bad data or failed work) instead of 2 (bad command line).
"""


class DataError(ValueError):
    """Input data the toolkit cannot use; the message names the file or folder and what was expected."""
