import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only copies of the real data sets beside the checkout (skipped where they are absent)."""
    path = Path(os.environ.get("LIFELONG_SHARED_DATA", SHARED_DATA))
    if not (path / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real data not found in {path} (set LIFELONG_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def omniglot_folder(shared_data, tmp_path_factory):
    """20 Omniglot characters x 20 drawings as 28x28 PNGs (ink white on black), one folder per character."""
    root = tmp_path_factory.mktemp("omniglot")
    with np.load(shared_data / "omniglot" / "omniglot_full.npz") as arrays:
        drawings = arrays["background_x"][:20]  # (20 characters, 20 drawings, 105, 105), ink 0 on 255
    for c, character in enumerate(drawings):
        (root / f"character{c:02d}").mkdir()
        for d, image in enumerate(character):
            Image.fromarray(255 - image).resize((28, 28), Image.BOX).save(root / f"character{c:02d}" / f"{d:02d}.png")
    return root
