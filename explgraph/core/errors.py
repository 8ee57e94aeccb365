"""The error tree shared by every explgraph library.

::

    ExplGraphError                 root; the CLI prints its message on one line, exit code 1
    ├── InputError                 bad user input: files, annotations, images, arguments
    │   ├── AnnotationError        an annotation file that does not parse or names missing images
    │   └── ImageError             an image that cannot be read
    ├── ModelError                 unknown model, unknown layer name, weights that do not fit
    ├── StoreError                 anything the graph store refuses
    │   ├── StoreUnavailable       the server cannot be reached, or the store is locked  (retryable)
    │   ├── AuthenticationFailed   wrong user name or password
    │   ├── QuerySyntaxError       the Cypher does not parse or bind
    │   ├── ReadOnlyViolation      a query tried to write without ``--write``
    │   └── UnknownModel           no model with that id in the store
    └── MiningError                learning or inference could not go on

Every message says what is wrong and what to do next.
"""

from __future__ import annotations


class ExplGraphError(Exception):
    """Root of every error explgraph raises on purpose."""

    retryable: bool = False


class InputError(ExplGraphError):
    """Bad user input."""


class AnnotationError(InputError):
    """An annotation file that does not parse, or that names images that do not exist."""


class ImageError(InputError):
    """An image file that cannot be decoded."""


class ModelError(ExplGraphError):
    """An unknown model or layer, or weights that do not fit the architecture."""


class StoreError(ExplGraphError):
    """The graph store refused an operation."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (server down, wrong address) or is locked by another writer."""

    retryable = True


class AuthenticationFailed(StoreError):
    """The server refused the credentials."""


class QuerySyntaxError(StoreError):
    """The Cypher statement does not parse or bind."""


class ReadOnlyViolation(StoreError):
    """A query tried to change the store in read-only mode."""


class UnknownModel(StoreError):
    """No model with that id exists in the store."""


class MiningError(ExplGraphError):
    """Graph learning or inference could not go on."""


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether ``error`` is Ctrl-C or was raised while one was being handled (click wraps
    KeyboardInterrupt in Abort/Exit; a driver may raise its own error while unwinding)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


__all__ = [
    "AnnotationError",
    "AuthenticationFailed",
    "ExplGraphError",
    "ImageError",
    "InputError",
    "MiningError",
    "ModelError",
    "QuerySyntaxError",
    "ReadOnlyViolation",
    "StoreError",
    "StoreUnavailable",
    "UnknownModel",
    "caused_by_interrupt",
]
