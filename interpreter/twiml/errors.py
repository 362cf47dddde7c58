"""The one exception a TwiML document can cause."""

from __future__ import annotations


class TwimlError(ValueError):
    """A problem in a TwiML document, located by document name, line and column.

    ``str(error)`` is ``name:line:column: message`` so that editors and logs can jump to
    the place; ``message`` alone names the element or attribute, the bad value and what
    would be valid. ``element`` and ``attribute`` are ``None`` when the problem is not
    about one (a syntax error, a document that is too large).
    """

    def __init__(
        self,
        message: str,
        name: str = "<document>",
        line: int = 1,
        column: int = 1,
        element: str | None = None,
        attribute: str | None = None,
    ) -> None:
        self.message = message
        self.name = name
        self.line = line
        self.column = column
        self.element = element
        self.attribute = attribute
        super().__init__(f"{name}:{line}:{column}: {message}")

    def __reduce__(self) -> tuple[type[TwimlError], tuple[object, ...]]:
        # Celery and multiprocessing pickle exceptions; the default reduce would call
        # __init__ with the formatted string alone and lose the location.
        return (
            type(self),
            (self.message, self.name, self.line, self.column, self.element, self.attribute),
        )
