"""Files that are whole or absent: every file dt writes goes through here, so a crash, a kill or a full disk
never leaves half of one (checkpoints, results.json, metrics.csv rewrites, reports, plots, datasets)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dt.errors import DTError

_UMASK = os.umask(0)  # read once: mkstemp makes 0600 files, the written file gets the usual 0666 & ~umask
os.umask(_UMASK)


class WriteFailed(DTError):
    """A write that failed (a full disk, a lost mount): nothing half-written, the previous file unchanged."""

    def __init__(self, path: Path, err: OSError, action: str = "free disk space or choose another folder") -> None:
        self.path, self.reason = path, err.strerror or str(err)
        kept = "nothing was half-written, the previous file is kept"
        super().__init__(f"cannot write {path} ({self.reason}); {kept}: {action}")


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Write `path` through a temporary file beside it: flushed, fsynced and renamed over `path` on success.

    On any failure (a full disk, an exception in the writer, Ctrl-C) the temporary file is removed and `path`
    keeps its previous content. A failed write (OSError) becomes a one-line DTError naming the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        with open(tmp, mode, **open_kwargs) as file:  # by name: writers that read `file.name` (onnx) get a path
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise WriteFailed(path, err) from err
        raise
    _sync_folder(path.parent)


def replace_folder(source: str | Path, target: str | Path) -> Path:
    """Move a folder filled elsewhere on the same file system to `target`, replacing an existing one.

    Readers see the old folder or the new one: the new one is renamed in, then the old one is deleted.
    """
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(source, target)
    except BaseException:
        if old is not None:
            os.replace(old / target.name, target)  # put the previous folder back
            old.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old)
    _sync_folder(target.parent)
    return target


def _sync_folder(folder: Path) -> None:
    """The rename itself survives a power cut once the folder's entry is on disk (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_writable_folder(folder: Path) -> bool:
    """Create `folder` if needed; whether this process can write into it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.access(folder, os.W_OK)
    except OSError:
        return False
