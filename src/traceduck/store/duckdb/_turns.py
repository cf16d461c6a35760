"""A process's turn at a DuckDB file among traceduck processes (``PATH.lock``).

DuckDB reads a file's header before it takes the file's own lock; taking this lock before DuckDB
opens the file and letting go after it has closed it keeps that read inside the process's turn
(``_connection.py`` says why that matters).
"""

from __future__ import annotations

import os

try:
    import fcntl
except ImportError:  # Windows: DuckDB's own lock only
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_SUFFIX", "TurnLock"]

LOCK_SUFFIX = ".lock"


class TurnLock:
    """This process's turn at a DuckDB file among traceduck processes: an ``flock`` on
    ``PATH.lock``, taken before DuckDB opens the file and let go after DuckDB has closed it.

    ``flock`` belongs to the open file, not the process (unlike DuckDB's ``fcntl`` lock, it is
    not lost when this process closes another descriptor of the file). The last holder removes
    the lock file as it lets go, so none is left beside an idle store; a process that locked a
    file so removed sees that it is no longer at ``PATH.lock`` and takes the new one. Where
    there is no ``flock`` (Windows) or no lock file can be created (a read-only directory),
    the turn is DuckDB's lock alone, as before.
    """

    def __init__(self, path: str) -> None:
        self.path = path + LOCK_SUFFIX
        self._fd: int | None = None

    def acquire(self, *, shared: bool) -> bool:
        """Take the turn without waiting: False while another process has it."""
        if fcntl is None or self._fd is not None:
            return True
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return True  # nowhere to keep the lock: DuckDB's lock alone
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            if self._is_current(fd):
                self._fd = fd
                if not shared:  # who holds it, for the message of a process that waits
                    try:
                        os.ftruncate(fd, 0)
                        os.write(fd, str(os.getpid()).encode())
                    except OSError:
                        pass
                return True
            os.close(fd)  # removed by the holder letting go as we opened it: take the new one
        return False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Nobody else holds it (a reader's shared lock becomes exclusive): remove the file.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if self._is_current(fd):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)  # lets go of the flock

    def _is_current(self, fd: int) -> bool:
        try:
            mine, current = os.fstat(fd), os.stat(self.path)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)

    def forget(self) -> None:
        """In a forked child: close the inherited descriptor without letting go of the lock
        (it is the parent's, which still holds the database open)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def holder(self) -> str:
        """What DuckDB's lock error says of the holder (``PID n``), as the lock file says it."""
        try:
            with open(self.path) as f:
                pid = f.read(32).strip()
        except OSError:
            pid = ""
        return f"lock held by PID {pid}" if pid.isdigit() else "lock held by another process"
