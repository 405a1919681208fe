"""The stage targeting test on the older transformers too: 4.x passes the KV cache as past_key_values, 5.x
as cache, and decode GEMMs must be told from prefill ones on both."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import transformers4

REPO = Path(__file__).resolve().parents[2]
STAGE_TEST = "tests/host/test_llm_model.py::test_stage_targeting_logs_decode_gemms_only"

pytestmark = pytest.mark.llm


def test_stage_targeting_on_transformers4():
    site = transformers4.site()
    assert site.is_dir(), f"{site} is missing: `make setup` installs requirements/transformers4.txt there"
    path = [str(site), str(REPO / "host"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "REALM_HIL_CACHE": str(transformers4.model_cache())}
    probe = "import transformers, realm_hil; print(transformers.__version__, realm_hil.__file__)"
    found = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert found.stdout.split() == [transformers4.version(), str(REPO / "host" / "realm_hil" / "__init__.py")]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-skips", "-q", STAGE_TEST],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
