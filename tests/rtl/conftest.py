"""Put tests/rtl on sys.path so every RTL test imports the shared cocotb_build helper."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
