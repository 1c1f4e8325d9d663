"""What the ``tfcnn`` command shows on the terminal.

TensorFlow's C++ runtime logs through Abseil, and lines logged before
``absl::InitializeLog()`` (the oneDNN and CUDA-driver notices, on machines
without a GPU ``failed call to cuInit``) reach the standard error stream
whatever ``TF_CPP_MIN_LOG_LEVEL`` says. A one-line tfcnn error then reads
as a CUDA failure. ``quiet_native_logs`` routes file descriptor 2 through
a filter that drops those lines and passes everything else on unchanged.

Keras' progress bar redraws one line with carriage returns and ANSI codes:
right on a terminal, unreadable in a log file. ``keras_verbosity`` picks
the bar on a terminal and one line per epoch (``verbose=2``) elsewhere.

Library code returns and the command prints: a stage (ingest, stats,
train) returns its result with one line that sums it up (``Result``:
the result dict and its ``line``), and ``tfcnn.cli`` prints that line on
stdout, ``tfcnn run`` as the stage's own line. Lines that tell how a stage
is going go to stderr as they happen (``progress``). A result line that
tells how to ask for more names the option as the caller spells it
(``option_text``): ``--overwrite`` from the command, ``overwrite=True``
from Python.
"""

import contextlib
import contextvars
import os
import re
import sys
import threading

# Abseil/glog prefix: severity, MMDD, time ("00:00:<epoch seconds>" before
# absl::InitializeLog), thread id, file:line].
_NATIVE_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_PRE_INIT = b"WARNING: All log messages before absl::InitializeLog()"
# Errors TensorFlow logs on every start on a machine without a GPU (or
# with several copies of a plugin), and oneDNN's note that it leaves a
# uint8 op (the segmentation pipeline's mask transposes) to Eigen: they say
# nothing about the command.
_NATIVE_STARTS = (b"I", b"W", b"E", b"F")
_BENIGN_ERRORS = (b"cuInit", b"Unable to register", b"already registered",
                  b"could not open file to read NUMA node",
                  b"oneDNN supports DT_UINT8 only on platforms with AVX-512")
# Errors of the collectives and the coordination service when a worker of
# a multi-worker run is lost: the exception that follows carries the same
# cause, and ``tfcnn.train.fit`` reports it in one line (WorkerLostError).
_REPORTED_ERRORS = (b"ring_alg.cc", b"base_collective_executor.cc",
                    b"collective_rma_distributed.cc",
                    b"coordination_service_agent.cc",
                    b"coordination_service.cc")
# How such an error's message goes on over more lines (the gRPC details,
# the lost task, the coordination service's advice): hidden with it.
_CONTINUATIONS = (b"Additional GRPC error information", b":", b"/job:",
                  b"The tasks have crashed.",
                  b"The error could be from a previous operation.")


def is_native_noise(line):
    """Whether a stderr line is a TensorFlow runtime notice to hide.

    Info and warning lines of the C++ runtime are hidden, as
    ``TF_CPP_MIN_LOG_LEVEL=2`` would; error lines only when they are known
    start-up noise; fatal lines never.

    Args:
        line: bytes, one line without its newline.

    Returns:
        bool.
    """
    if line.startswith(_PRE_INIT):
        return True
    match = _NATIVE_LINE.match(line)
    if match is None:
        return False
    severity = match.group(1)
    if severity in (b"I", b"W"):
        return True
    return severity == b"E" and any(
        s in line for s in (*_BENIGN_ERRORS, *_REPORTED_ERRORS))


def is_continuation(line):
    """Whether a stderr line continues the native log line before it (the
    gRPC details of a collective's error): hidden with that line."""
    return line.startswith(_CONTINUATIONS)


@contextlib.contextmanager
def quiet_native_logs():
    """Hides TensorFlow's C++ log noise on stderr for the ``with`` block.

    File descriptor 2 becomes a pipe read by a thread that forwards every
    line but ``is_native_noise`` ones to the real stderr, so Python's own
    messages (and those of child processes) keep their order.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_forward, args=(read_fd, saved),
                            name="tfcnn-stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end we hold
        # Children that inherited the pipe may still hold it open.
        pump.join(timeout=5)
        os.close(saved)


def _forward(read_fd, out_fd):
    pending = b""
    hiding = False  # the last line was hidden: its continuations go too
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            kept = []
            for line in lines:
                hiding = is_native_noise(line) or (
                    hiding and is_continuation(line))
                if not hiding:
                    kept.append(line)
            if kept:
                _write_all(out_fd, b"\n".join(kept) + b"\n")
            # A progress bar redraws its line with "\r" and no newline: pass
            # it on now. Only what may begin a native line (or continue a
            # hidden one) waits for its end.
            if pending and not hiding and pending[:1] not in _NATIVE_STARTS:
                _write_all(out_fd, pending)
                pending = b""
    if pending and not is_native_noise(pending):
        _write_all(out_fd, pending)


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def keras_verbosity(stream=None):
    """Keras ``verbose``: 1 (progress bar) on a terminal, else 2.

    Args:
        stream: the stream Keras writes to. Defaults to ``sys.stdout``.

    Returns:
        int.
    """
    stream = sys.stdout if stream is None else stream
    try:
        return 1 if stream.isatty() else 2
    except (AttributeError, ValueError):
        return 2


def progress(line):
    """Prints a line that tells how a stage is going on stderr, flushed:
    stdout is for result lines (``Result.line``), which scripts read.

    Args:
        line: str, e.g. "train: resuming from runs/x/backup at epoch 3".
    """
    print(line, file=sys.stderr, flush=True)


class Result(dict):
    """A stage's result, a JSON-ready dict, with the line that sums it up.

    A dict, so ``--json`` writes it and Python reads its keys as before;
    ``line`` is what the command prints for it (e.g. "train: wrote
    model.keras, ... in runs/x"), or "" where the stage has nothing to
    say (a worker that is not the chief).

    Args:
        data: dict (or pairs) of the result.
        line: str, the result line. Defaults to "".
    """

    def __init__(self, data=(), line=""):
        super().__init__(data)
        self.line = line


# How a result line names an option: None in Python (``overwrite=True``),
# else a dict of the ``tfcnn`` command's flags that differ from
# ``--argument``.
_command_flags = contextvars.ContextVar("tfcnn_command_flags", default=None)


@contextlib.contextmanager
def command_flags(**renamed):
    """Makes ``option_text`` name options as the ``tfcnn`` command does.

    Args:
        **renamed: argument name -> the flag that sets it, where that is
            not ``--argument`` (``tfcnn run`` asks for ``overwrite`` with
            ``--force``).
    """
    outer = _command_flags.get() or {}
    token = _command_flags.set({**outer, **renamed})
    try:
        yield
    finally:
        _command_flags.reset(token)


def option_text(argument, value=True):
    """How a user asks for ``argument=value`` where they called tfcnn from.

    Args:
        argument: str, the Python argument, e.g. ``"overwrite"``.
        value: the value asked for. Defaults to True.

    Returns:
        str: ``"overwrite=True"`` in Python; the flag (``"--overwrite"``)
        inside ``command_flags``.
    """
    flags = _command_flags.get()
    if flags is None:
        return f"{argument}={value!r}"
    return flags.get(argument, "--" + argument.replace("_", "-"))


def differences_text(changes, stored, wanted, shown=4):
    """Differing settings as one clause of an error line.

    Args:
        changes: list of ``(key, stored value, wanted value)``.
        stored, wanted: str, where each value comes from ("there",
            "in the shards"; "here", "in the recipe").
        shown: int, keys named before "and N more". Defaults to 4.

    Returns:
        str, e.g. ``"data.seed = 0 there, 1 here; and 2 more"``.

    Example:

    >>> differences_text([("data.seed", 0, 1)], "there", "here")
    'data.seed = 0 there, 1 here'
    """
    text = "; ".join(f"{key} = {old!r} {stored}, {new!r} {wanted}"
                     for key, old, new in changes[:shown])
    if len(changes) > shown:
        text += f"; and {len(changes) - shown} more"
    return text
