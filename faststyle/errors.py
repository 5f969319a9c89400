"""The exceptions that the command-line tools turn into an exit status (cli.run_cli)."""


class InputError(Exception):
    """A problem with what the user gave us (a file, a flag, a data set).

    The CLIs print ``error: <message>`` and exit with status 2 instead of a
    traceback; anything else is a bug and keeps its traceback.
    """


class WorkError(Exception):
    """The work itself failed (e.g. a save on a full disk), not the input.

    The CLIs print ``error: <message>`` and exit with status 1.
    """


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the work cleanly, and the work has said what
    it kept (e.g. a training snapshot); the CLIs exit with status 130."""


# The exit statuses every command line tool of this project uses.
EXIT_OK = 0
EXIT_FAILURE = 1      # a failure during the work (WorkError, a diverged run)
EXIT_BAD_INPUT = 2    # InputError, a bad flag
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM
