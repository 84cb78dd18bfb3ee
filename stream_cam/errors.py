"""Errors that reach the user as one clear line.

Everything the CLI can explain to a person derives from :class:`StreamCamError`;
the CLI prints ``stream-cam: error: <message>`` and exits non-zero. Anything else
is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations


def one_line(exc: BaseException, limit: int = 200) -> str:
    """A library's error text as one short line, for a message of ours (LiteRT's and Keras' span several)."""
    return " ".join(str(exc).split())[:limit]


class StreamCamError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


class InputError(StreamCamError, ValueError):
    """A file, option or value given by the user is not usable."""


class ModelError(StreamCamError):
    """A model cannot be loaded, built or explained."""


class UnsafeFileError(ModelError):
    """A weights file asks for something the safe reader refuses to do."""


class OutputError(StreamCamError, OSError):
    """An output cannot be written (exists, unwritable, disk full...)."""


class OutputExistsError(OutputError):
    """An output file exists (or appeared meanwhile) and --overwrite was not given."""
