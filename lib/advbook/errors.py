"""The errors a user sees as one line (`advbook` prints their message and exits 2): each says what
is wrong and what to do, and is raised before any work where it can be."""
from __future__ import annotations


class ParameterError(ValueError):
    """A chapter parameter is unknown, of the wrong type or out of range."""


class DataUnavailable(RuntimeError):
    """A dataset's files are missing (or wrong) and cannot be fetched from here."""


class CorruptRecord(RuntimeError):
    """A stored record cannot be read; the message names the file and what to do."""


class NotComputed(LookupError):
    """A record is missing and computing it was not allowed."""


class MismatchedImages(ValueError):
    """Two cells of a comparison were measured on different test images or attack seeds."""


class NotebookFailed(RuntimeError):
    """A chapter's notebook raised; the message is the error's one line and where the failed
    notebook was kept."""


ONE_LINE = (ParameterError, DataUnavailable, CorruptRecord, NotComputed, MismatchedImages, NotebookFailed,
            FileNotFoundError)
