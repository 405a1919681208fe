"""The Verilated accelerator behind a pynq.Device: build, ctypes binding, device model, benchmark."""
