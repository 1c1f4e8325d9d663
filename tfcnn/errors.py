"""Exceptions for bad user input.

The command line turns a ``TfcnnError`` into one line on stderr and exit
status 2; anything else is a bug and keeps its traceback. Each class also
derives from the built-in exception a Python caller would expect.
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
