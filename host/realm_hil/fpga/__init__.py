"""The FPGA side of realm-hil: Vivado script checks, the bitstream manifest and yosys resource estimates.

Nothing here needs Vivado; the flow itself lives in fpga/ at the top of the repository.
"""
