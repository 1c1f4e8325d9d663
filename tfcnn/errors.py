"""Every exception class tfcnn raises.

The command line turns a ``TfcnnError`` into one line on stderr and exit
status 2; anything else is a bug and keeps its traceback. Each class also
derives from the built-in exception a Python caller would expect. The
server's two (``NotFoundError``, ``RequestError``) become HTTP answers.
"""


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


class NotFoundError(LookupError):
    """No such model or version is being served."""


class RequestError(Exception):
    """A request the server can't answer; carries the HTTP status."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status
