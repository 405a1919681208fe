"""The LLM side: offline model and text, W8A8 quantization, GEMM offload, perplexity.

Import the submodules themselves (realm_hil.llm.gemm, .model, .offload, ...): the package imports
none of them, so the torch-free ones (selection, text) serve a board without torch.
"""
