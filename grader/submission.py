"""Reading submissions safely: a folder or a zip laid out like ``exercises/``.

Nothing here runs learner code. ``topic_files`` reads a topic's source files as text (the sandboxed
worker writes them back out on its side); ``unpack`` extracts a zip, refusing absolute paths, ``..``,
links and oversized archives.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile

from grader.sandbox import LearnerError
from grader.wire import ErrorKind

MAX_FILE = 256 << 10
MAX_FILES = 32
MAX_TOPIC = 1 << 20  # a topic's sources together: what the static check parses
MAX_ZIP_TOTAL = 16 << 20
MAX_ENTRIES = 1000
MAX_DEPTH = 16
SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.py")


def _is_learner_source(name: str) -> bool:
    return bool(SAFE_NAME.fullmatch(name)) and not name.startswith("test_") and name != "conftest.py"


def topic_files(root: str, topic: str) -> dict[str, str]:
    """``{filename: source}`` of ``root/<topic>/`` (test files, conftest and links left out)."""
    try:
        return _topic_files(root, topic)
    except OSError as e:
        raise LearnerError(ErrorKind.IMPORT, f"{topic}/ could not be read ({type(e).__name__}: {str(e)[:200]})") from None


def _topic_files(root: str, topic: str) -> dict[str, str]:
    folder = os.path.join(root, topic)
    if not os.path.isdir(folder) or os.path.islink(folder):
        raise LearnerError(ErrorKind.MISSING, f"no folder {topic}/ in the submission")
    files = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        st = os.lstat(path)
        if not _is_learner_source(name) or not stat.S_ISREG(st.st_mode):
            continue
        if st.st_size > MAX_FILE:
            raise LearnerError(ErrorKind.IMPORT, f"{topic}/{name} is larger than {MAX_FILE >> 10} KiB")
        if len(files) >= MAX_FILES:
            raise LearnerError(ErrorKind.IMPORT, f"{topic}/ holds more than {MAX_FILES} Python files")
        if sum(len(text) for text in files.values()) + st.st_size > MAX_TOPIC:
            raise LearnerError(ErrorKind.IMPORT, f"{topic}/ holds more than {MAX_TOPIC >> 10} KiB of Python")
        with open(path, "rb") as f:
            try:
                files[name] = f.read().decode("utf-8")
            except UnicodeDecodeError:
                raise LearnerError(ErrorKind.IMPORT, f"{topic}/{name} is not UTF-8 text") from None
    if f"{topic}.py" not in files:
        raise LearnerError(ErrorKind.MISSING, f"no file {topic}/{topic}.py in the submission")
    return files


def find_root(folder: str, topics) -> str | None:
    """The folder holding the topic folders: ``folder`` itself, its ``exercises/``, or a single
    subfolder (as zips made by archiving a folder have); None when there is none. A symbolic link is
    never followed there: it could point at a classmate's work or the solutions (``topic_files``
    refuses linked topic folders and files for the same reason)."""
    candidates = [folder, os.path.join(folder, "exercises")]
    entries = [e for e in os.scandir(folder) if not e.name.startswith((".", "__"))]
    if len(entries) == 1 and entries[0].is_dir(follow_symlinks=False):  # a zip of one top folder
        candidates += [entries[0].path, os.path.join(entries[0].path, "exercises")]
    for c in candidates:
        if os.path.isdir(c) and not os.path.islink(c) and any(os.path.isdir(os.path.join(c, t)) for t in topics):
            return c
    return None


class BadArchive(Exception):
    """A zip that cannot be unpacked safely; the message says why."""


def unpack(zip_path: str, dest: str) -> None:
    """Extract ``zip_path`` into ``dest``: regular files only, every path inside ``dest``. Any
    failure (a damaged or encrypted entry, a file and a folder of the same name, ...) raises
    ``BadArchive`` with the reason."""
    try:
        _unpack(zip_path, dest)
    except BadArchive:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the archive does, it costs only its own submission
        raise BadArchive(f"it could not be unpacked ({type(e).__name__}: {str(e)[:200]})") from None


def _unpack(zip_path: str, dest: str) -> None:
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BadArchive(f"not a readable zip file ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_ZIP_TOTAL:
            raise BadArchive("the archive is too large")
        for info in infos:
            name = info.filename
            mode = info.external_attr >> 16
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
                raise BadArchive(f"absolute path in the archive: {name!r}")
            parts = name.rstrip("/").split("/")
            if ".." in parts:
                raise BadArchive(f"path leaving the archive: {name!r}")
            if "." in parts or "" in parts or any(not p.isprintable() for p in parts):
                raise BadArchive(f"malformed path in the archive: {name!r}")
            if len(parts) > MAX_DEPTH or any(len(p.encode("utf-8", "replace")) > 200 for p in parts):
                raise BadArchive(f"path too deep or too long in the archive: {name[:100]!r}")
            if stat.S_ISLNK(mode):
                raise BadArchive(f"symbolic link in the archive: {name!r}")
            if info.flag_bits & 0x1:
                raise BadArchive(f"encrypted entry in the archive: {name!r}")
        for info in infos:
            target = os.path.join(dest, info.filename)
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as src, open(target, "xb") as out:
                out.write(src.read(MAX_ZIP_TOTAL + 1)[:MAX_ZIP_TOTAL])


def digest(root: str, topics) -> str:
    """sha256 over the learner source files of ``topics`` (what is graded, nothing else)."""
    h = hashlib.sha256()
    for topic in sorted(topics):
        try:
            files = topic_files(root, topic)
        except LearnerError:
            continue
        for name, text in sorted(files.items()):
            h.update(f"{topic}/{name}\0".encode())
            h.update(text.encode())
            h.update(b"\0")
    return h.hexdigest()
