"""Run GEMMs on an accelerator attached to another machine: `realm-hil serve` there, open_remote here."""

from .client import PendingGemm, RemoteAccelerator, open_remote
from .server import RemoteServer, ServerConfig

__all__ = ["PendingGemm", "RemoteAccelerator", "RemoteServer", "ServerConfig", "open_remote"]
