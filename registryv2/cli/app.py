"""The ``registryv2`` command group: global options, the shared session, output, exit statuses.

Output is for people, or ``--json``; a failure becomes one line and an exit status.

Exit statuses: 0 done; 1 the registry, the network or the data failed, or the user answered no
(nothing was done); 2 bad usage or bad input (a malformed reference, an archive that is not one);
130 interrupted (Ctrl-C); 143 terminated (SIGTERM). Clean-up runs first in every case: no
partial output file is left, and unfinished uploads are kept for the next run to resume.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .._version import __version__
from ..exceptions import RegistryError, ValidationError, one_line
from ..log import logger
from ..models import DEFAULT_TIMEOUT, DEFAULT_WORKERS
from ..progress import TerminalProgress
from ..retry import RetryPolicy

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from ..client import RegistryClient
    from ..engine import TransferEngine

# The most of a message an error or warning line shows: a line, not a screenful.
INSECURE_WARNING = (
    "--insecure: certificates are not checked and plain http is allowed; anyone on the way "
    "can read and change what is sent"
)
EPILOG = """\b
Exit status: 0 done; 1 registry, network or data error, or a question answered
no; 2 bad usage or input; 130 interrupted; 143 terminated.
Global options may come before or after the command."""


@dataclass
class Session:
    """What every command shares: how to reach registries, and how to speak to the user."""

    insecure: bool = False
    ca_cert: str | None = None
    username: str | None = None
    password_stdin: bool = False
    workers: int = DEFAULT_WORKERS
    timeout: float = DEFAULT_TIMEOUT
    retries: int = RetryPolicy().attempts
    verbose: bool = False
    quiet: bool = False
    json: bool = False
    _password: list[str | None] = field(default_factory=list)
    _progress: list[TerminalProgress] = field(default_factory=list)
    _stdout_taken: list[bool] = field(default_factory=list)
    _warned: list[bool] = field(default_factory=list)

    @property
    def password(self) -> str | None:
        """Read once, from standard input or (a terminal) a prompt, whatever the registries."""
        if not self._password:
            secret = None
            if self.password_stdin:
                if not self.username:
                    raise ValidationError("--password-stdin needs --username")
                secret = sys.stdin.readline().rstrip("\r\n")
            elif self.username:
                if not sys.stdin.isatty():
                    raise ValidationError(
                        "--username needs --password-stdin, or a terminal to ask for the password"
                    )
                secret = click.prompt(f"Password for {self.username}", hide_input=True)
            self._password.append(secret)
        return self._password[0]

    def connect(self, endpoint: str, **settings: Any) -> RegistryClient:
        """A client for ``endpoint`` with the global options, and progress when shown;
        ``settings`` (a command's own) win over them."""
        from ..client import RegistryClient

        if self.insecure and not self._warned:
            self._warned.append(True)
            self.warn(INSECURE_WARNING)
        chosen: dict[str, Any] = {
            "ca_bundle": self.ca_cert,
            "insecure": self.insecure,
            "timeout": self.timeout,
            "retry": RetryPolicy(attempts=self.retries),
            "workers": self.workers,
            "progress": self._progress[0] if self._progress else None,
        }
        if "username" not in settings:  # a command's own credentials win (sync's --src-creds)
            chosen.update(username=self.username, password=self.password)
        return RegistryClient(endpoint, **{**chosen, **settings})

    @property
    def progress(self) -> TerminalProgress | None:
        """The progress drawn for this command, if any."""
        return self._progress[0] if self._progress else None

    def warn(self, message: str) -> None:
        """One line on standard error (a JSON document with ``--json``), whatever ``-q`` says;
        above the progress, when it is drawn."""
        message = one_line(message)
        line = json.dumps({"warning": message}) if self.json else f"registryv2: warning: {message}"
        with contextlib.suppress(OSError):
            if self._progress:
                self._progress[0].note(line)
            else:
                click.echo(line, err=True)

    def connector(self, **settings: Any) -> Callable[[str], RegistryClient]:
        """``connect`` with some settings fixed (chunk size, resume...)."""
        return lambda endpoint: self.connect(endpoint, **settings)

    def local_engine(self) -> TransferEngine:
        """An engine for copies no registry takes part in (archive to layout, say), with the
        global options' workers and this command's progress."""
        from ..engine import TransferEngine

        progress = self._progress[0] if self._progress else None
        return TransferEngine(None, self.workers, None, progress)

    def quiet_output(self) -> None:
        """Standard output carries the data (an archive for docker load): results go to
        standard error."""
        self._stdout_taken.append(True)

    def show_progress(self, verb: str) -> None:
        """Draw progress from now on: on a terminal only, never with ``-q`` or ``--json``."""
        terminal = sys.stderr.isatty() and (bool(self._stdout_taken) or sys.stdout.isatty())
        if self.quiet or self.json or not terminal:
            return
        self._progress[:] = [TerminalProgress(sys.stderr, verb)]

    def finish_progress(self) -> None:
        for progress in self._progress:
            progress.close()

    def result(self, doc: Any, lines: Sequence[str], quiet_lines: Sequence[str] = ()) -> None:
        """Print a command's result: ``doc`` as one JSON document, or ``lines`` for people
        (``quiet_lines`` with ``-q``)."""
        self.finish_progress()
        err = bool(self._stdout_taken)
        if self.json:
            click.echo(json.dumps(doc, indent=2, default=_jsonable), err=err)
            return
        for line in quiet_lines if self.quiet else lines:
            click.echo(line, err=err)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


def session() -> Session:
    """The current command's session."""
    return click.get_current_context().ensure_object(Session)


GLOBAL_OPTIONS: list[click.Option] = [
    click.Option(["--insecure"], is_flag=True, help="Allow plain http and unverified TLS."),
    click.Option(
        ["--ca-cert"],
        type=click.Path(exists=True, dir_okay=False),
        help="PEM file of certificate authorities to trust.",
    ),
    click.Option(["--username", "-u"], help="User name (else docker's stored credentials)."),
    click.Option(
        ["--password-stdin"], is_flag=True, help="Read the password (or token) from standard input."
    ),
    click.Option(
        ["--workers"],
        type=click.IntRange(1, 64),
        default=DEFAULT_WORKERS,
        show_default=True,
        help="Blobs moved in parallel.",
    ),
    click.Option(
        ["--timeout"],
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds without a byte from the registry before a request is retried.",
    ),
    click.Option(
        ["--retries"],
        type=click.IntRange(1),
        default=RetryPolicy().attempts,
        show_default=True,
        help="Attempts of a failing step before giving up.",
    ),
    click.Option(
        ["--verbose", "-v"],
        is_flag=True,
        help="Log every request (never a credential) to standard error.",
    ),
    click.Option(["--quiet", "-q"], is_flag=True, help="No progress; only the essential output."),
    click.Option(
        ["--json"], is_flag=True, help="Print one JSON document; errors as JSON on standard error."
    ),
]


class Command(click.Command):
    """A command whose help lists the group's options too: they may follow the command."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        records = [r for o in GLOBAL_OPTIONS if (r := o.get_help_record(ctx)) is not None]
        with formatter.section("Global options (before or after the command)"):
            formatter.write_dl(records)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        found = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            found += [
                CompletionItem(name, help=o.help)
                for o in GLOBAL_OPTIONS
                for name in o.opts
                if name.startswith(incomplete)
            ]
        return found


class Group(click.Group):
    """A group whose options may also be written after the command, as crane allows."""

    command_class = Command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args, self))


def hoist_global_options(args: list[str], group: click.Group) -> list[str]:
    """Move the group's options found after the command name to before it.

    Example:
        >>> hoist_global_options(["push", "a.tar", "r/x", "--insecure"], main_group)
        ['--insecure', 'push', 'a.tar', 'r/x']
    """
    takes_value = {
        name
        for o in group.params
        if isinstance(o, click.Option) and not o.is_flag
        for name in o.opts
    }
    flags = {
        name for o in group.params if isinstance(o, click.Option) and o.is_flag for name in o.opts
    }
    before: list[str] = []
    rest: list[str] = []
    i = 0
    seen_command = False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if seen_command and (name in flags or name in takes_value):
            before.append(arg)
            if name in takes_value and "=" not in arg and i + 1 < len(args):
                before.append(args[i + 1])
                i += 1
        elif not seen_command and name in takes_value and "=" not in arg:
            rest += args[i : i + 2]
            i += 1
        else:
            seen_command = seen_command or not arg.startswith("-")
            rest.append(arg)
        i += 1
    return before + rest


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="registryv2")
@click.pass_context
def main_group(ctx: click.Context, /, **options: Any) -> None:
    """Push, pull and manage images on Docker Registry v2 / OCI registries, without a daemon.

    References are written as docker writes them: nginx:1.25 is docker.io/library/nginx:1.25,
    localhost:5000/team/app:v1@sha256:... names a registry, a tag and a digest.
    """
    session = ctx.ensure_object(Session)
    for key, value in options.items():
        setattr(session, key, value)
    if session.insecure:
        # The user chose to skip verification, and is told so once, by us (Session.connect):
        # not by urllib3 in two lines of Python warning a host.
        import urllib3

        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    for old in [h for h in logger.handlers if isinstance(h, _Warnings)]:
        logger.removeHandler(old)
    if session.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("registryv2: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    else:
        logger.addHandler(_Warnings(session))


class _Warnings(logging.Handler):
    """The library's warnings (an upload that had to start again), said as the command's own
    are (:meth:`Session.warn`)."""

    def __init__(self, session: Session) -> None:
        super().__init__(logging.WARNING)
        self.session = session

    def emit(self, record: logging.LogRecord) -> None:
        self.session.warn(record.getMessage())


main_group.params.extend(GLOBAL_OPTIONS)


class Declined(click.ClickException):
    """The user answered no to a question: nothing was done, exit status 1."""

    exit_code = 1


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds as Ctrl-C does."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def _fail(
    message: str,
    kind: str,
    status: int,
    error: BaseException | None,
    as_json: bool,
    what: str = "",
) -> NoReturn:
    """One line on stderr, ``registryv2: {what}{message}``; with ``--json`` a document whose
    ``message`` is the message alone, ``type`` naming the failure. A message longer than
    :data:`~registryv2.exceptions.MESSAGE_LIMIT` is cut there, saying how much more there was."""
    message = one_line(message)
    line = f"registryv2: {what}{message}"
    if as_json:
        doc: dict[str, Any] = {"type": kind, "message": message}
        if isinstance(error, RegistryError):
            doc |= {"status": error.status, "codes": error.codes, "transient": error.transient}
        line = json.dumps({"error": doc})
    with contextlib.suppress(OSError):  # stderr gone: the status still tells what happened
        click.echo(line, err=True)
    _exit_now(status)


def _exit_now(status: int) -> NoReturn:
    """Exit at once, whatever the outcome: clean-up ran while the stack unwound (archives are
    in place, journals closed), a worker still opening a connection must not hold the process
    for its connect timeout, and tearing the interpreter down would add some 30 ms to every
    command. Output that cannot be flushed (a reader gone) makes the status 1, as click does."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``registryv2`` command (``python -m registryv2``); it ends the process with the
    command's exit status. From Python, call the library's functions instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
    signal.signal(signal.SIGTERM, _terminate)
    try:
        status = main_group.main(args=args, prog_name="registryv2", standalone_mode=False)
    except click.exceptions.Exit as e:
        status = e.exit_code
    except Declined as e:
        _fail(e.format_message(), "Declined", e.exit_code, None, as_json)
    except click.ClickException as e:
        hint = " (see registryv2 --help)" if isinstance(e, click.UsageError) else ""
        _fail(f"{e.format_message()}{hint}", "UsageError", e.exit_code, None, as_json)
    except ValidationError as e:
        _fail(str(e), type(e).__name__, 2, e, as_json, "error: ")
    except RegistryError as e:
        _fail(str(e), type(e).__name__, 1, e, as_json, "error: ")
    except (KeyboardInterrupt, click.exceptions.Abort) as e:
        # click turns Ctrl-C (and our SIGTERM) into Abort, keeping what it was as the cause.
        if isinstance(e, _Terminated) or isinstance(e.__cause__, _Terminated):
            _fail("terminated", "Terminated", 143, None, as_json)
        _fail("interrupted", "Interrupted", 130, None, as_json)
    except Exception as e:  # a bug of ours: still one line, never a traceback
        _fail(f"{type(e).__name__}: {e}", "InternalError", 1, e, as_json, "internal error: ")
    _exit_now(status if isinstance(status, int) else 0)
