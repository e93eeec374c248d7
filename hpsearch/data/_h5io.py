"""Safe HDF5 file I/O for the snapshot store: atomic writes that survive a full disk, and reads
whose errors on damaged files become DataErrors.

HDF5 crashes the process (a segmentation fault in H5Fflush/H5Fclose) when a write fails while it
flushes its metadata, e.g. on a full disk or past a file-size limit. So the store's writes go
through :class:`GuardedFile`, a Python file object for h5py's ``fileobj`` driver that never
reports a failed write to HDF5: it remembers the first error, discards the rest, and the writer
raises that error once HDF5 has closed the file cleanly. The temporary file is then removed and
the old store is untouched.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py

from hpsearch.errors import DataError

__all__ = ["GuardedFile", "atomic_h5", "reading"]

#: What h5py, numpy and json raise on a truncated or corrupted file.
DAMAGE = (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError, RuntimeError, OverflowError)


class GuardedFile(io.RawIOBase):
    """A read-write binary file whose failed writes are remembered in ``error``, never raised."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by close()
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        return self._file.readinto(buffer)

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B"))
        if self.error is None:
            try:
                written = self._file.write(data)
                if written == size:
                    return written
                raise OSError(f"short write: {written} of {size} bytes")
            except OSError as exc:
                self.error = exc
        self._file.seek(size, os.SEEK_CUR)  # as if written: HDF5 goes on, the error is raised later
        return size

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._file.truncate(size)
            except OSError as exc:
                self.error = exc
        return self.tell() if size is None else size

    def flush(self) -> None:
        """Nothing to do: writes are unbuffered; :meth:`sync` makes them durable."""

    def sync(self) -> None:
        """fsync the file (records a failure in ``error``)."""
        if self.error is None:
            try:
                os.fsync(self._file.fileno())
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


@contextlib.contextmanager
def atomic_h5(path: Path) -> Iterator[h5py.File]:
    """Yield a new HDF5 file that replaces ``path`` only if the block finishes and every write
    succeeded; otherwise the temporary file is removed and ``path`` stays as it was."""
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = GuardedFile(temp)
    except OSError as exc:
        raise DataError(f"cannot write a store in {path.parent} ({exc}): choose a writable folder") from exc
    try:
        try:
            with h5py.File(stream, "w") as handle:
                yield handle
            stream.sync()
        finally:
            stream.close()
        if stream.error is not None:
            raise stream.error
        os.replace(temp, path)
        _sync_folder(path.parent)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        failure = stream.error or (exc if isinstance(exc, OSError) else None)
        if failure is not None:  # disk full, file-size limit, quota, I/O error
            raise DataError(f"writing {path} failed ({failure}); the store is as it was before: free some space "
                            "or choose another folder") from failure
        raise


def _sync_folder(folder: Path) -> None:
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@contextlib.contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Turn the errors of a damaged file into a DataError that names the file and what was read."""
    try:
        yield
    except DataError:
        raise
    except DAMAGE as exc:
        raise DataError(
            f"{path}: cannot read {what}: the file is damaged or not written by hpsearch "
            f"({type(exc).__name__}: {str(exc)[:200]}); re-create or re-import the store"
        ) from exc
