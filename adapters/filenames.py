"""File names in a file-drop exchange, and the rules that keep every one inside its folder.

Two kinds of name meet here. The gateway's own (the delivery id plus a suffix) are checked
by ``safe_file_name`` before a message is written. The department's (result files found in
its outbox) are checked by ``result_name_ok`` before any path is built from them; a name
that fails is left where it is and reported, never opened, moved or deleted.

Both rules are an allow-list, not a block-list: ASCII letters, digits, ``_``, ``.`` and
``-``; a letter or digit first (so no dot-files and no ``-`` that a shell tool would read as
an option); no ``..``; bounded length. That excludes ``/``, ``\\``, NUL, drive letters,
absolute paths and non-ASCII look-alikes in one go, on every server platform.
"""

from __future__ import annotations

import re

from adapters.base import PermanentError

# The delivery id is 32 characters (docs/decisions/0004); 128 leaves room for other stems.
_GATEWAY_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# A department's name may be longer (stem + ".result.xml" + a marker), but must leave room
# under the usual 255-byte limit for the ".<n>" an archive collision adds.
_DEPARTMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_SUFFIX = re.compile(r"(\.[A-Za-z0-9_-]{1,16}){0,3}")
TEMP_SUFFIX = ".tmp"


def safe_file_name(stem: str, suffix: str) -> str:
    """A gateway-chosen name that cannot leave its directory."""
    if not _GATEWAY_STEM.fullmatch(stem) or ".." in stem or not _SUFFIX.fullmatch(suffix):
        raise PermanentError("file name refused: only letters, digits, '_', '.', '-' are allowed")
    return stem + suffix


def suffix_ok(suffix: str) -> bool:
    """A configured suffix such as ``.done``: up to three ``.part`` pieces, nothing else."""
    return bool(suffix) and bool(_SUFFIX.fullmatch(suffix))


def result_name_ok(name: str) -> bool:
    """Whether a department's file name may be used to build a path (see the module doc)."""
    return bool(_DEPARTMENT_NAME.fullmatch(name)) and ".." not in name


def is_temporary(name: str) -> bool:
    """Names a writer is still working on, by the two common conventions: ``*.tmp`` and
    dot-files. They are never read, moved or deleted by pickup."""
    return name.startswith(".") or name.endswith(TEMP_SUFFIX)


def numbered(name: str, n: int) -> str:
    """``D1.result.xml`` → ``D1.result.1.xml``: the n-th free name when ``name`` is taken."""
    base, dot, ext = name.rpartition(".")
    return f"{base}.{n}.{ext}" if dot and base else f"{name}.{n}"


def check_plain(name: str) -> str:
    """Defence in depth for the file stores: a single path component, nothing else."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise PermanentError("file name refused: not a plain file name")
    return name
