"""An older transformers beside the venv (requirements/transformers4.txt), for tests that must pass on it too.

`make setup` runs this file: it installs the lock with pip --target into the user cache, in a directory
named by the lock's hash, so a changed lock gets a directory of its own and a stale one is never used.
Only transformers and the tokenizers and huggingface_hub it needs are there; the venv provides the rest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from realm_hil.toolchain import cache_dir

LOCK = Path(__file__).resolve().parents[2] / "requirements" / "transformers4.txt"


def site() -> Path:
    return cache_dir("transformers4") / hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]


def model_cache() -> Path:
    """REALM_HIL_CACHE for runs on this transformers: a model converted by another version is not reused."""
    return site().with_name(site().name + "-cache")


def version() -> str:
    return re.search(r"^transformers==(\S+)", LOCK.read_text(), re.MULTILINE)[1]


def install() -> Path:
    target = site()
    if target.is_dir():
        return target
    # installed beside the target and renamed into place: the directory exists only when complete
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--require-hashes", "--target", str(tmp),
             "-r", str(LOCK)],
            check=True,
        )
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():  # not another setup that finished first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(install())
