"""YAML profile files (device timing profiles, ABFT profiles): shipped ones by name, others by path."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import InputError


def shipped_names(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def resolve(name_or_path: str | Path, directory: Path, what: str) -> Path:
    """A YAML path as given, or the shipped `directory/<name>.yaml`; `what` names the kind in errors."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError(f"{what} file {path} does not exist")
        return path
    shipped = directory / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise InputError(f"unknown {what} {name_or_path!r}; available: {', '.join(shipped_names(directory))}")
    return shipped


def read_yaml(path: Path, what: str) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"invalid {what} {path}: not valid YAML ({exc})") from exc
