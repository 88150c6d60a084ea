"""Where data files live, how they are checked (MD5) and how missing ones are downloaded."""

import hashlib
import http.client
import logging
import os
import urllib.request
from pathlib import Path

from ..errors import DataError

ENV_VAR = "LIFELONG_DATA"
DEFAULT_DIR = Path("~/.cache/lifelong")
TIMEOUT_S = 30
log = logging.getLogger(__name__)


def resolve_data_dir(data_dir=None) -> Path:
    """The data directory: `data_dir` if given, else $LIFELONG_DATA if set, else ~/.cache/lifelong."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(data_dir).expanduser()


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path, md5: str, remedy: str) -> None:
    """Raise DataError, ending with `remedy` (what to do), when the file's MD5 is not `md5`."""
    actual = md5sum(path)
    if actual != md5:
        raise DataError(f"{path} is corrupt or truncated (MD5 {actual}, expected {md5}): {remedy}")


def missing_file_error(path: Path, url: str, reason: str = "") -> DataError:
    """The error for a data file that is not there (and could not be downloaded)."""
    why = f" and downloading it failed ({reason})" if reason else ""
    return DataError(
        f"{path.name} is not in {path.parent}{why}: download it from {url} into that directory, "
        f"or pass --data-dir (or set {ENV_VAR}) to a directory that has it"
    )


def ensure_file(directory, filename: str, url: str, md5: str | None, download: bool = True) -> Path:
    """Return `directory/filename`, downloading it from `url` when missing and `download` is true.

    The file is checked against `md5` (None: no official checksum, not checked). A download goes to a
    `.part` file that only replaces the target once complete and verified.
    """
    path = Path(directory) / filename
    if path.is_file():
        if md5 is not None:
            verify_md5(path, md5, f"delete it and download it again from {url}")
        return path
    if not download:
        raise missing_file_error(path, url)
    part = path.with_name(path.name + ".part")
    log.info("downloading %s to %s", url, path)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(part, "wb") as f:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
    except (OSError, http.client.HTTPException, ValueError) as e:  # URLError and timeouts are OSErrors
        part.unlink(missing_ok=True)
        raise missing_file_error(path, url, f"{type(e).__name__}: {e}") from e
    if md5 is not None and (actual := md5sum(part)) != md5:
        part.unlink()
        raise DataError(
            f"the download of {path.name} from {url} is corrupt (MD5 {actual}, expected {md5}): try again later, "
            f"or download it by hand into {path.parent}"
        )
    os.replace(part, path)
    return path
