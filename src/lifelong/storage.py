"""Files written safely: replaced atomically, never through a link planted at their name, one writer at a time,
and checked when read back.

    replace_atomically(path, data)     # bytes to a new file beside `path`, renamed over it
    with lock_folder(out): ...         # one writer per run folder (FOLDER/.lock)
    with lock_beside(path): ...        # one writer per file (.NAME.lock beside it)
    save_checkpoint(path, state); load_checkpoint(path)   # torch.save with a SHA-256 digest of the contents
"""

import errno
import fcntl
import hashlib
import io
import os
import re
import secrets
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import ConfigError, DataError


# ---------------------------------------------------------------------- atomic replace
def replace_atomically(path, data: bytes) -> None:
    """Write `data` to a new temporary file in `path`'s folder, then rename it over `path` (atomic on POSIX): a
    reader never sees half a file, and a failure (a full disk) leaves the last good file and no temporary one.
    The rename replaces whatever is at `path`, a symbolic link included, and never writes through it; the temporary
    file is created with O_EXCL, so nothing already at its name is written through either. Its name holds the
    writer's pid (`.NAME.PID.RANDOM.tmp`): what a killed writer leaves is recognised (`remove_leftovers`). The
    file is opened as any other (the umask decides who may read it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        try:
            _write_file(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, DataError):
            raise _write_error(path, error) from None
        raise


def _write_file(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # os.write may write less than asked
        view = view[os.write(fd, view):]


def _write_error(path, error: OSError) -> DataError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DataError(f"no space left on device writing {path}: free some space and run again (the last "
                         "complete file there is kept)")
    return DataError(f"cannot write {path} ({error.strerror or error})")


def write_text(path, text: str) -> None:
    replace_atomically(path, text.encode("utf-8"))


# ---------------------------------------------------------------------- leftovers of killed writers
LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)(\.[0-9a-f]{8})?\.tmp")


def remove_leftovers(folder, owned=()) -> list[Path]:
    """Delete the temporary files that killed writers (kill -9, a power cut) left in `folder`: those of a process
    no longer alive, and those of the files named in `owned`, which only the holder of the folder's lock writes
    (the caller holds it: no one is writing them now, whatever the pid, which may have been reused). Returns them."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        match = LEFTOVER.fullmatch(tmp.name)
        if match and (match["name"] in owned or not _alive(int(match["pid"]))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


# ---------------------------------------------------------------------- one writer at a time
_held: dict[str, int] = {}  # the lock files this process holds, with how many `with` blocks hold each


def lock_folder(folder):
    """The lock of a run folder (FOLDER/.lock; the folder is made if needed)."""
    return _lock(Path(folder) / ".lock", f"{folder} is in use")


def lock_beside(path):
    """The lock of one file (.NAME.lock beside it)."""
    path = Path(path)
    return _lock(path.with_name(f".{path.name}.lock"), f"{path} is being written")


@contextmanager
def _lock(lock_file: Path, busy: str):
    """Hold an exclusive advisory lock (fcntl.flock) on `lock_file` while the block runs, or raise ConfigError
    naming the pid of the process that holds it. The holder removes the file when it is done; the kernel releases
    a flock when its holder dies, kill -9 included, so a killed writer leaves a file but never a lock that blocks.
    Advisory: it keeps lifelong's writers apart, not other programs. Taken again inside a block that holds it (the
    command line, then the engine, in one folder), it passes: the process already holds it (so threads of one
    process are not kept apart)."""
    key = os.path.realpath(lock_file)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = _take(lock_file, busy)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            lock_file.unlink(missing_ok=True)  # before the lock goes: no one can take a file that is gone
    finally:
        os.close(fd)  # releases the lock


def _take(lock_file: Path, busy: str) -> int:
    """An open `lock_file`, flock'ed. Its holder may remove it between our open and our flock: then the lock we got
    is on a file no one else will open, and we open the new one."""
    while True:
        try:
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as error:
            raise DataError(f"cannot lock {lock_file} ({error.strerror or error})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.stat(lock_file, follow_symlinks=False)):
                return fd
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ConfigError(f"{busy} by another lifelong process (pid {holder}): wait until it ends, or write "
                              "elsewhere") from None
        except FileNotFoundError:
            pass
        os.close(fd)


def _holder(fd: int) -> str:
    """The pid written into a held lock file (its holder writes it just after taking the lock: a moment's wait)."""
    for _ in range(20):
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if pid:
            return pid
        time.sleep(0.05)
    return "unknown"


# ---------------------------------------------------------------------- checked checkpoints
CHECKED = "lifelong.sha256"


def digest(value) -> str:
    """SHA-256 of a checkpoint's contents: every tensor's dtype, shape and bytes, and every plain value, in order.
    Computed on what torch.load gives back, so a byte changed anywhere in the file (a tensor's data, which the zip
    reader does not check) shows."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def _feed(h, value) -> None:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        dense = value.to_dense() if value.layout != torch.strided else value  # a sparse tensor: its values
        flat = dense.contiguous().reshape(-1)
        h.update(f"tensor {flat.dtype} {value.layout} {tuple(value.shape)}\n".encode())
        if flat.numel():  # (an empty tensor has no bytes, and cannot be viewed as bytes)
            h.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"dict {len(value)}\n".encode())
        for key, item in value.items():
            _feed(h, key)
            _feed(h, item)
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__} {len(value)}\n".encode())
        for item in value:
            _feed(h, item)
    else:  # numbers, strings, None, and the few torch types the safe loader allows (dtype, device)
        text = repr(value)
        h.update(f"{type(value).__name__} {len(text)}\n{text}".encode())


def save_checkpoint(path, state: dict) -> None:
    """torch.save of `state` (tensors and plain Python data only, so that `load_checkpoint` reads it without
    unpickling anything else) with the digest of its contents, replaced atomically."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKED, "sha256": digest(state), "payload": state}, buffer)
    replace_atomically(path, buffer.getbuffer())


def load_checkpoint(path):
    """torch.load with `weights_only=True`: tensors, numbers, strings and containers of them, nothing that can
    run code when it is read (a pickle can name any function to call; this loader refuses every such name and
    raises `pickle.UnpicklingError`). Loaded onto the CPU; the caller moves what it needs.

    A file whose contents do not match their digest is refused (DataError). A file written before digests were
    kept (lifelong 0.x, no "sha256" entry) loads as it did then, unchecked: refusing it would strand every learner
    saved before."""
    saved = torch.load(path, weights_only=True, map_location="cpu")
    if not (isinstance(saved, dict) and (saved.get("format") == CHECKED or "sha256" in saved)):
        return saved
    if saved.get("format") != CHECKED or "payload" not in saved or saved.get("sha256") != digest(saved["payload"]):
        raise DataError(f"{path} is damaged: its contents do not match the SHA-256 digest saved with them, so it "
                        "was not used; restore it from a copy, or start again from an earlier file")
    return saved["payload"]
