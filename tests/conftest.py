import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only copies of the real data sets beside the checkout (skipped where they are absent)."""
    path = Path(os.environ.get("LIFELONG_SHARED_DATA", SHARED_DATA))
    if not (path / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real data not found in {path} (set LIFELONG_SHARED_DATA)")
    return path
