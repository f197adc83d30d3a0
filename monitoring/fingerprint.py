"""Group errors: one exception type raised along one in-app call path is one group.

The fingerprint is the sha256 of the exception type's name and the traceback's in-app frames,
each reduced to "module:function". Line numbers and the message are left out, so an edit that
moves lines, or a message that carries an id or an amount, keeps the same group.

A live exception (`fingerprint`) and the text of a traceback (`parse_traceback_text`, for
django-q2 failures, which store only text) reduce to the same frames and so to the same group.
"""

import functools
import hashlib
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from types import TracebackType

from django.conf import settings

FALLBACK_FRAMES = 3
_LIBRARY_DIRS = (".venv", "site-packages", "dist-packages")


@dataclass(frozen=True)
class Frame:
    filename: str
    function: str


@dataclass(frozen=True)
class ParsedTraceback:
    exception_type: str
    message: str
    frames: list[Frame] = field(default_factory=list)


def exception_type_name(exc: BaseException) -> str:
    """The name a printed traceback gives the type: ValueError, finance.exceptions.RuleViolation."""
    cls = type(exc)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.lru_cache(maxsize=4096)
def _classify(filename: str) -> tuple[bool, str]:
    """(in_app, module) for a code file name; cached, file names repeat endlessly."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False, filename
    path = os.path.realpath(filename)
    root = os.path.realpath(settings.BASE_DIR)
    if path.startswith(root + os.sep):
        relative = os.path.relpath(path, root)
        parts = relative.split(os.sep)
        if not any(p in _LIBRARY_DIRS for p in parts):
            return True, _dotted(relative)
    # A library or the standard library: name it relative to the longest sys.path entry.
    best = ""
    for entry in sys.path:
        entry_path = os.path.realpath(entry or ".")
        if path.startswith(entry_path + os.sep) and len(entry_path) > len(best):
            best = entry_path
    return False, _dotted(os.path.relpath(path, best) if best else os.path.basename(path))


def _dotted(relative: str) -> str:
    module = relative.removesuffix(".py").replace(os.sep, ".")
    return module.removesuffix(".__init__")


def _digest(type_name: str, frames: list[Frame]) -> tuple[str, str]:
    classified = [(_classify(f.filename), f.function) for f in frames]
    in_app = [(module, function) for (app, module), function in classified if app]
    chosen = (
        in_app or [(module, function) for (_, module), function in classified][-FALLBACK_FRAMES:]
    )
    text = "\n".join([type_name, *(f"{module}:{function}" for module, function in chosen)])
    culprit = f"{chosen[-1][0]}.{chosen[-1][1]}" if chosen else ""
    return hashlib.sha256(text.encode()).hexdigest(), culprit


def frames_of(tb: TracebackType | None) -> list[Frame]:
    return [Frame(f.f_code.co_filename, f.f_code.co_name) for f, _ in traceback.walk_tb(tb)]


def fingerprint(exc: BaseException) -> tuple[str, str]:
    """(sha256 hex, culprit) of a live exception; only its own traceback, not its cause."""
    return _digest(exception_type_name(exc), frames_of(exc.__traceback__))


def fingerprint_text(parsed: ParsedTraceback) -> tuple[str, str]:
    """(sha256 hex, culprit) of a traceback known only as text."""
    return _digest(parsed.exception_type, parsed.frames)


_HEADER = "Traceback (most recent call last):"
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)\s*$')
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::(?P<message>.*))?$")


def parse_traceback_text(text: str, *, default_type: str) -> ParsedTraceback:
    """Exception type, message and frames from a printed traceback.

    Reads the last traceback in the text (the exception finally raised, when several are
    chained). Text before the first traceback is taken as the message: django-q2 stores a
    failed task's result as "<str(exception)> : <traceback>". Text without a traceback gives
    `default_type`, the whole text as message and no frames.
    """
    first = text.find(_HEADER)
    if first < 0:
        return ParsedTraceback(default_type, text.strip())
    head = text[:first].rstrip()
    head = head.removesuffix(":").rstrip()
    frames: list[Frame] = []
    exception_line: list[str] = []
    for line in text[text.rfind(_HEADER) + len(_HEADER) :].splitlines():
        if exception_line:
            exception_line.append(line)
            continue
        match = _FRAME.match(line)
        if match:
            frames.append(Frame(match["file"], match["func"]))
        elif line and not line[0].isspace():
            exception_line.append(line)
    type_name, message = default_type, ""
    if exception_line:
        match = _EXCEPTION_LINE.match(exception_line[0])
        if match:
            type_name = match["type"]
            rest = [(match["message"] or "").strip(), *exception_line[1:]]
            message = "\n".join(rest).strip()
        else:
            message = "\n".join(exception_line).strip()
    return ParsedTraceback(type_name, head or message, frames)
