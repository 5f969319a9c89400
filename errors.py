"""The one exception type that the command-line tools turn into a one-line message."""


class InputError(Exception):
    """A problem with what the user gave us (a file, a flag, a data set).

    The CLIs print ``error: <message>`` and exit with status 2 instead of a
    traceback; anything else is a bug and keeps its traceback.
    """
