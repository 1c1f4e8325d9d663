"""Every exception class tfcnn raises.

The command line turns a ``TfcnnError`` into one line on stderr and exit
status 2; anything else is a bug and keeps its traceback. Each class also
derives from the built-in exception a Python caller would expect. The
server's ``ServingError`` (and its ``RequestError``) become REST and gRPC
answers with a canonical ``StatusCode``.
"""

import enum


class TfcnnError(Exception):
    """Base class: an error the user can fix (a path, a key, a value)."""


class RecipeError(TfcnnError, ValueError):
    """A recipe key is unknown, ill-typed or out of range."""


class DataError(TfcnnError, ValueError):
    """Input data is missing, malformed or inconsistent (names the file)."""


class UnknownModelError(TfcnnError, KeyError):
    """No model is registered under the requested name."""

    def __str__(self):
        # KeyError's str() quotes its message; show it as written.
        return str(self.args[0]) if self.args else ""


class ModelOptionError(TfcnnError, TypeError):
    """A model builder does not take the requested option."""


class ModelValueError(TfcnnError, ValueError):
    """A model builder rejects an option's value or the input shape."""


class ExportError(TfcnnError, RuntimeError):
    """An export failed verification or would overwrite a published version."""


class WeightsError(DataError):
    """A weights file is missing or unreadable, or matches no layer."""


class ArgumentError(TfcnnError, ValueError):
    """An argument of export, predict or serve is out of range."""


class DivergedError(TfcnnError, ArithmeticError):
    """The loss became NaN or infinite; training stopped."""


class WorkerLostError(TfcnnError, RuntimeError):
    """Another worker of a multi-worker run died or stopped answering."""


class ConfigError(TfcnnError, ValueError):
    """A model config or batching parameters file is malformed."""


class ServeError(TfcnnError, OSError):
    """The server can't start (a port in use, a missing directory)."""


class NotFoundError(LookupError):
    """No such model, version or label is being served."""


class StatusCode(enum.Enum):
    """A canonical status code: its gRPC name and its HTTP status.

    The HTTP statuses are those TF Serving's REST API maps the codes to
    (INVALID_ARGUMENT 400, NOT_FOUND 404, RESOURCE_EXHAUSTED 429,
    DEADLINE_EXCEEDED 504, ...): a client's mistake is never UNKNOWN or
    INTERNAL, and overload is never a 5xx.
    """

    INVALID_ARGUMENT = 400
    NOT_FOUND = 404
    RESOURCE_EXHAUSTED = 429
    CANCELLED = 499
    UNIMPLEMENTED = 501
    UNAVAILABLE = 503
    DEADLINE_EXCEEDED = 504

    @property
    def http_status(self):
        return self.value


class ServingError(Exception):
    """A request the server can't answer (REST and gRPC alike).

    Args:
        message: str, what was wrong, naming the input or limit.
        code: ``StatusCode``. Defaults to ``StatusCode.INVALID_ARGUMENT``.
        http_status: int, the REST status when it differs from the code's
            (413 for a request over a size limit). Defaults to None.
    """

    def __init__(self, message, code=StatusCode.INVALID_ARGUMENT,
                 http_status=None):
        super().__init__(message)
        self.code = code
        self.status = http_status or code.http_status


class RequestError(ServingError):
    """A REST request the server can't answer; carries the HTTP status."""

    def __init__(self, message, status=400):
        code = {404: StatusCode.NOT_FOUND,
                429: StatusCode.RESOURCE_EXHAUSTED}.get(
                    status, StatusCode.INVALID_ARGUMENT)
        super().__init__(message, code, http_status=status)
