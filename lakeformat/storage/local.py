"""A local folder. Plain os calls (fsspec's local layer costs more per call than it adds)."""
from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import shutil
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from lakeformat.errors import KeyNotFoundInStorageError, StorageError
from lakeformat.storage.base import ReadableBuffer, StorageProvider, WritableBuffer, byte_view, content_version


class LocalStorage(StorageProvider):
    # exclusive create is a hard link of a complete temporary file (fails if the name exists);
    # compare-and-replace runs under flock(2) on the key's folder, which every conditional
    # write of this class takes (plain `set` does not: shared objects change only conditionally)
    conditional_writes = True
    concurrency = 4
    reads_into_cheaply = True
    request_latency_s = 60e-6  # an open, a seek and a read from the page cache, plus Python
    bandwidth_bytes_s = 2e9
    range_latency_s = 5e-6  # one pread on an open file

    def __init__(self, root: str, read_only: bool = False):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.read_only = read_only

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key) if key else self.root

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFoundInStorageError(key) from None
        except OSError as e:
            raise StorageError(f"Reading {key!r} under {self.root!r} failed: {e}") from e

    def map_readonly(self, key: str) -> Optional[memoryview]:
        """mmap(2) of the file: a scan reads the page cache in place. Our writes replace a
        file by renaming a new one over it, so a mapping keeps the old bytes until dropped."""
        try:
            with open(self._path(key), "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    return None  # an empty file cannot be mapped
                return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFoundInStorageError(key) from None
        except (OSError, ValueError):
            return None

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start)
                return f.read(-1 if end is None else max(0, end - start))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFoundInStorageError(key) from None

    def get_ranges(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> List[bytes]:
        """One open, then a pread per range."""
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFoundInStorageError(key) from None
        try:
            return [os.pread(fd, int(b) - int(a), int(a)) for a, b in zip(starts, ends)]
        finally:
            os.close(fd)

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        """Metadata and encoders (small files) one after the other: on a local disk a thread
        per file costs more than the read; chunks side by side."""
        keys = list(keys)
        small = [k for k in keys if "chunks/" not in k]
        out = {k: self._get_or_none(k, missing_ok) for k in small}
        big = [k for k in keys if k not in out]
        if big:
            out.update(super().get_many(big, missing_ok))
        return {k: out[k] for k in keys}

    def read_into(self, key: str, start: int, out: WritableBuffer) -> None:
        """preadv straight into `out` (no intermediate bytes object; the GIL is released)."""
        view = byte_view(out)
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFoundInStorageError(key) from None
        try:
            done = 0
            while done < len(view):
                got = os.preadv(fd, [view[done:]], start + done)
                if got == 0:
                    raise StorageError(f"{key!r} under {self.root!r} ends at byte {start + done}, before the {start + len(view)} asked for")
                done += got
        finally:
            os.close(fd)

    def set(self, key: str, value: bytes) -> None:
        self.check_writable()
        # Write beside the target and rename: a reader or a crash sees old or new, never half.
        tmp, path = self._write_temp(key, value)
        try:
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _write_temp(self, key: str, value: bytes) -> Tuple[str, str]:
        path = self._path(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(value)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp, path

    @contextlib.contextmanager
    def _folder_lock(self, key: str) -> Iterator[None]:
        folder = os.path.dirname(self._path(key))
        os.makedirs(folder, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def set_if_absent(self, key: str, value: bytes) -> bool:
        self.check_writable()
        tmp, path = self._write_temp(key, value)
        try:
            with self._folder_lock(key):
                os.link(tmp, path)  # atomic: fails if `path` exists; readers see it whole
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def _current_version(self, key: str) -> Optional[str]:
        try:
            with open(self._path(key), "rb") as f:
                return content_version(f.read())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        self.check_writable()
        tmp, path = self._write_temp(key, value)
        try:
            with self._folder_lock(key):
                if self._current_version(key) != version:
                    return False
                os.replace(tmp, path)
                tmp = ""
                return True
        finally:
            if tmp:
                os.unlink(tmp)

    def delete_if_match(self, key: str, version: str) -> bool:
        self.check_writable()
        with self._folder_lock(key):
            if self._current_version(key) != version:
                return False
            try:
                os.remove(self._path(key))
            except FileNotFoundError:
                return False
            return True

    def set_parts(self, key: str, parts: Iterable[ReadableBuffer]) -> None:
        """Store the concatenation of `parts` (buffers) atomically, without joining them
        in memory first: one gathered write."""
        self.check_writable()
        path = self._path(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            views = [v for v in map(byte_view, parts) if len(v)]
            while views:
                done = os.writev(fd, views[:1024])
                while views and done >= len(views[0]):
                    done -= len(views[0])
                    views.pop(0)
                if views and done:
                    views[0] = views[0][done:]
            os.close(fd)
            fd = -1
            os.replace(tmp, path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def set_many(self, items: Dict[str, bytes]) -> None:
        # local writes land in the page cache: a thread pool costs more than it overlaps
        for k, v in items.items():
            self.set(k, v)

    def delete(self, key: str) -> None:
        self.check_writable()
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def size(self, key: str) -> int:
        try:
            return os.path.getsize(self._path(key))
        except FileNotFoundError:
            raise KeyNotFoundInStorageError(key) from None

    def list(self, prefix: str = "") -> List[str]:
        base = self._path(prefix)
        if os.path.isfile(base):
            return [prefix]
        out = []
        for folder, _, files in os.walk(base):
            rel = os.path.relpath(folder, self.root)
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                out.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        return sorted(out)

    def delete_prefix(self, prefix: str) -> None:
        self.check_writable()
        path = self._path(prefix)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.isfile(path):
            os.remove(path)

    def clear(self) -> None:
        self.check_writable()
        if os.path.isdir(self.root):
            for name in os.listdir(self.root):
                p = os.path.join(self.root, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
