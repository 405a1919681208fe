"""Fixtures shared by the host tests."""

import pytest


@pytest.fixture(scope="module")
def quantized():
    """The default model quantized to W8A8 behind one GEMM router, on one torch thread (as the CLI runs it).

    torch is imported here, not at the top: `make pynq-compat` runs host tests on an image without it.
    """
    import torch

    from realm_hil.llm.gemm import GemmRouter
    from realm_hil.llm.model import load_model
    from realm_hil.llm.offload import W8A8Config, quantize_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loaded = load_model()
    router = GemmRouter()
    quantize_model(loaded.model, W8A8Config(), router)
    yield loaded, router
    torch.set_num_threads(threads)
