"""One contract for every command line tool: messages, exit statuses, outputs.

* Bad flags and bad input give one line, ``error: <what is wrong>``, on stderr
  and exit status 2 (:class:`ArgumentParser`, :func:`run_cli`).
* A failure during the work (e.g. a full disk at the final save) gives one
  ``error:`` line and exit status 1 (:class:`errors.WorkError`).
* Ctrl-C and SIGTERM unwind normally (temporary files are removed) and give
  exit status 130.
* Outputs are checked for writability before the work starts
  (:func:`check_writable`), so a long run never ends in a failed write that
  could have been foreseen.
"""
import argparse
import contextlib
import copy
import os
import signal
import sys
import tempfile
import textwrap
import threading

from faststyle import tempfiles
from faststyle.errors import (EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK,
                              InputError, Interrupted, WorkError)

INTERRUPTED_REMOVES = 'unfinished outputs are removed'


def exit_codes(interrupted=INTERRUPTED_REMOVES):
    """The exit statuses for a ``--help`` epilog; ``interrupted`` says what
    a command leaves when Ctrl-C or SIGTERM stops it."""
    return textwrap.fill(
        'exit status: 0 done; 1 failure during the work (e.g. a full disk; one '
        '"error:" line says what); 2 bad input or flags (one "error:" line); 130 '
        'interrupted (Ctrl-C or SIGTERM; {}).'.format(interrupted), 79)


# The largest seed numpy's RandomState takes.
MAX_SEED = 2 ** 32 - 1


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """The one ``--help`` style of every tool.

    Each flag's default ends its help as ``(default: X)``, taken from the
    parser (a list as it is typed, its values separated by spaces); where a
    default needs words (it depends on other input, or is None), the help
    says ``(default: ...)`` itself and nothing is added. No default is shown
    for None, False (switches) or an empty list. A flag
    is listed under its one spelling, with underscores as CFNS's flags
    (:func:`add_flag`), not under its hyphenated alias.
    """

    def _get_help_string(self, action):
        default = action.default
        if ('(default' in (action.help or '') or default is None or default is False
                or (isinstance(default, (list, tuple)) and not default)):
            return action.help
        if isinstance(default, (list, tuple)):  # as it is typed: --stats instance running
            return '{} (default: {})'.format(action.help, ' '.join(
                str(value) for value in default).replace('%', '%%'))
        return super()._get_help_string(action)

    def _format_action_invocation(self, action):
        hidden = getattr(action, 'hidden_aliases', ())
        if hidden:
            action = copy.copy(action)
            action.option_strings = [s for s in action.option_strings if s not in hidden]
        return super()._format_action_invocation(action)


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """:class:`HelpFormatter` for a description and epilog already laid out."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...``, exit 2, no usage block),
    the exit statuses in the ``--help`` epilog (``interrupted``: what Ctrl-C
    leaves, :func:`exit_codes`) and :class:`HelpFormatter`."""

    def __init__(self, *args, interrupted=INTERRUPTED_REMOVES, **kwargs):
        epilog = kwargs.get('epilog')
        codes = exit_codes(interrupted)
        kwargs['epilog'] = codes if not epilog else epilog.rstrip() + '\n\n' + codes
        kwargs.setdefault('formatter_class', HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, 'error: {} (see {} --help)\n'.format(
            message, self.prog))


def module_main(doc, used_by, argv=None):
    """``python MODULE.py [--help]`` for a module that is not a command: say
    what it is (its docstring) and which commands use it, exit 0; anything
    else given is one error line and exit 2."""
    parser = ArgumentParser(description=doc, formatter_class=RawDescriptionHelpFormatter)
    # It does no work, so the exit statuses of the commands would only mislead.
    parser.epilog = used_by
    parser.parse_args(argv)
    parser.print_help()
    return 0


def seed(text):
    """argparse type: an integer seed numpy accepts, 0 .. 2**32-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('not an integer: {!r}'.format(text))
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError('must be in 0..{}, not {}'.format(MAX_SEED, value))
    return value


def shard(text):
    """argparse type: 'I/N' -> (I, N) with 0 <= I < N, the share of a sorted
    list that one of N processes takes (items I, I+N, I+2N, ...)."""
    try:
        index, count = (int(part) for part in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError('must look like I/N, e.g. 0/4, not {!r}'.format(text))
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError('{}: need 0 <= I < N'.format(text))
    return index, count


def add_flag(parser, name, **kwargs):
    """``parser.add_argument(name, ...)`` for a long flag spelled with
    underscores, CFNS's style (``--max_frames``), that also takes the
    hyphenated spelling (``--max-frames``) some of our tools had; ``--help``
    lists the underscore one only (:class:`HelpFormatter`)."""
    alias = name.replace('_', '-')
    if alias == name:
        return parser.add_argument(name, **kwargs)
    action = parser.add_argument(name, alias, **kwargs)
    action.hidden_aliases = (alias,)
    return action


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def interrupts_held():
    """SIGINT and SIGTERM that come while the block runs are held and
    delivered again as it ends (KeyboardInterrupt, see :func:`run_cli`).
    For starting threads: a KeyboardInterrupt inside ``Thread.start()``
    leaves a thread running that ``join()`` refuses ("cannot join thread
    before it is started"; it happened when SLURM cancelled a
    ``generate.py`` job), so nothing could wait for it before cleaning up.
    Python-level handlers, not a signal mask: the kernel may hand the signal
    to any thread (OpenVINO's, a reader's), and Python runs the handler in
    the main thread all the same."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread takes signals in Python
        return
    held = []
    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda signum, frame: held.append(signum))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            signal.raise_signal(held[0])


def run_cli(body, argv=None):
    """``body(argv)`` -> exit status, with the project's one contract; every
    command's ``main`` returns it (``python X.py`` exits with it).

    ``body`` returns None or 0 (done), True (failed; it said why) or a status;
    InputError gives 2, WorkError and MemoryError 1, Interrupted (the work
    stopped on a signal and said what it kept) and KeyboardInterrupt 130.

    SIGTERM is turned into KeyboardInterrupt while ``body`` runs, so that
    ``finally`` blocks remove temporary files as on Ctrl-C.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        status = body(argv)
        return EXIT_FAILURE if status is True else (status or EXIT_OK)
    except InputError as e:
        print('error: {}'.format(e), file=sys.stderr)
        return EXIT_BAD_INPUT
    except WorkError as e:
        if str(e):  # empty: another MPI process says it
            print('error: {}'.format(e), file=sys.stderr)
        return EXIT_FAILURE
    except MemoryError:
        print('error: out of memory', file=sys.stderr)
        return EXIT_FAILURE
    except Interrupted:  # the work said what it kept
        return EXIT_INTERRUPTED
    except KeyboardInterrupt as e:
        name = str(e) or 'SIGINT'
        print('\ninterrupted ({}); unfinished outputs were removed'.format(name),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def progress_bar(total, name, enabled=True, leave=True):
    """A tqdm bar counting frames on stderr, shown only on a terminal, so the
    logs of batch jobs stay readable; ``total`` None: a counter with a rate.
    The rate is in frames a second also below one (tqdm's own turns it into
    '2.45s/ frames')."""
    from tqdm import tqdm
    bar_format = ('{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}]'
                  if total else '{desc}: {n_fmt}{unit} [{elapsed}, {rate_noinv_fmt}]')
    return tqdm(total=total, desc=name, unit=' frames', dynamic_ncols=True, file=sys.stderr,
                leave=leave, disable=None if enabled else True, bar_format=bar_format)


def counted(number, noun):
    """'1 epoch', '2 epochs': ``number`` and ``noun``, plural with an s unless 1."""
    return '{} {}{}'.format(number, noun, '' if number == 1 else 's')


def check_regular_file(path, what='file'):
    """InputError unless ``path`` is an existing regular file (not a folder,
    FIFO or device, which could hang a reader)."""
    if not os.path.exists(path):
        raise InputError('{}: no such {}'.format(path, what))
    if os.path.isdir(path):
        raise InputError('{}: is a directory, not {} {}'.format(
            path, 'an' if what[:1] in 'aeiou' else 'a', what))
    if not os.path.isfile(path):
        raise InputError('{}: not a regular file (a FIFO or device?); refusing to '
                         'read it'.format(path))


def describe_os_error(e):
    """'No space left on device' and the like, without the errno number."""
    return e.strerror or str(e) or type(e).__name__


def check_writable(path, what='output', remove_orphans=True, inputs=()):
    """Raise InputError unless a file can be written at ``path``, and it is
    none of the command's ``inputs`` (paths; those missing are skipped).

    The directory is created if needed (as the final save would) and a
    temporary file is made and removed in it; an existing directory of that
    name, or a read-only place, is reported now, before any work. Temporary
    files that killed runs left in the directory are removed, unless
    ``remove_orphans`` is False (for the per-file checks of a directory that
    was checked once already: the cleanup lists the whole directory).
    """
    if not path:
        raise InputError('empty {} path'.format(what))
    if os.path.isdir(path):
        raise InputError('cannot write {} {}: it is a directory; give a file '
                         'name'.format(what, path))
    if os.path.exists(path) and not os.path.isfile(path):
        raise InputError('cannot write {} {}: it exists and is not a regular '
                         'file'.format(what, path))
    check_not_input(path, inputs)
    check_writable_directory(os.path.dirname(os.path.abspath(path)), what, path,
                             remove_orphans)


def check_not_input(path, inputs, what='input'):
    """InputError if ``path`` is one of ``inputs`` (the same file however
    spelt; missing paths and None are skipped)."""
    if os.path.exists(path) and any(
            source and os.path.exists(source) and os.path.samefile(path, source)
            for source in inputs):
        raise InputError('{}: refusing to overwrite the {}'.format(path, what))


def check_writable_directory(directory, what='output', path=None, remove_orphans=True):
    """Raise InputError unless files can be created in ``directory`` (or, if
    it is missing, in its nearest existing parent); also removes temporary
    files that killed runs left there (tempfiles.clean_orphans), unless
    ``remove_orphans`` is False."""
    path = path or directory
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InputError('cannot write {} {}: {} is not a directory'.format(
            what, path, directory))
    # Probe the nearest existing folder: nothing is created for a run that
    # then stops on bad input.
    existing = directory
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError('cannot write {} {}: {} is not a directory'.format(
            what, path, existing))
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix='.tmp-probe-')
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        # Name the file when there is one, else say it is the folder that failed.
        target = path if path != directory else 'in {}'.format(directory)
        raise InputError('cannot write {} {} ({})'.format(what, target, describe_os_error(e)))
    if remove_orphans and existing == directory:
        tempfiles.clean_orphans(directory)
