"""`TQLError`: every error a query raises, with where in the query text it happened."""
from __future__ import annotations

from typing import Optional, Tuple

from lakeformat.errors import LakeFormatError


def line_col(text: str, pos: int) -> Tuple[int, int]:
    """1-based (line, column) of character offset `pos` in `text`."""
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


class TQLError(LakeFormatError, ValueError):
    """A query that does not parse, names an unknown tensor or function, or mixes types.

    `line` and `column` are 1-based; `str(err)` shows the query line with a caret under the
    position. `pos` is the character offset (None when the error has no position).
    """

    def __init__(self, message: str, text: Optional[str] = None, pos: Optional[int] = None):
        self.message = message
        self.text = text
        self.pos = pos
        self.line: Optional[int] = None
        self.column: Optional[int] = None
        if text is not None and pos is not None:
            self.line, self.column = line_col(text, pos)
        super().__init__(self._render())

    def _render(self) -> str:
        if self.text is None or self.pos is None or self.line is None or self.column is None:
            return self.message
        src = self.text.split("\n")[self.line - 1]
        col = self.column - 1
        if len(src) > 120:  # a window of the line around the error, not the whole of it
            lo = max(0, col - 60)
            hi = min(len(src), col + 60)
            src = ("..." if lo else "") + src[lo:hi] + ("..." if hi < len(src) else "")
            col = col - lo + (3 if lo else 0)
        # tabs keep their width in the caret line so the caret sits under the right character
        pad = "".join(c if c == "\t" else " " for c in src[:col])
        return f"{self.message} (line {self.line}, column {self.column})\n  {src}\n  {pad}^"

    def at(self, text: str, pos: Optional[int]) -> "TQLError":
        """The same error, placed in `text` (used when the error was raised without it)."""
        if self.text is not None or pos is None:
            return self
        return TQLError(self.message, text, pos)
