"""Which GEMMs of the model are offloaded: layer, component and stage patterns.

Components use one vocabulary across architectures: Llama/Mistral q_proj ... down_proj and OPT
q_proj, k_proj, v_proj, out_proj, fc1, fc2 map onto q, k, v, o, gate, up, down; "qk" and "sv"
are the attention matmuls Q.K^T and S.V; "lm_head" is the output projection (no layer).
"""

from __future__ import annotations

from dataclasses import dataclass

from realm_hil.errors import InputError

LINEAR_COMPONENTS = ("q", "k", "v", "o", "gate", "up", "down")
ATTENTION_COMPONENTS = ("qk", "sv")
LAYER_COMPONENTS = (*LINEAR_COMPONENTS, *ATTENTION_COMPONENTS)  # the GEMMs of a decoder layer
COMPONENTS = (*LAYER_COMPONENTS, "lm_head")
# The paper's classes: errors in the attention output and MLP down projections hurt, elsewhere little
SENSITIVE_COMPONENTS = ("o", "down")
RESILIENT_COMPONENTS = ("q", "k", "v", "gate", "up", "qk", "sv")
STAGES = ("prefill", "decode")

# Module leaf names -> component; fc1 is OPT's MLP input projection, the class of up/gate.
MODULE_COMPONENTS = {
    "q_proj": "q",
    "k_proj": "k",
    "v_proj": "v",
    "o_proj": "o",
    "out_proj": "o",
    "gate_proj": "gate",
    "up_proj": "up",
    "fc1": "up",
    "down_proj": "down",
    "fc2": "down",
    "lm_head": "lm_head",
}

_GROUPS = {"linear": LINEAR_COMPONENTS, "attention": ATTENTION_COMPONENTS, "all": COMPONENTS,
           "sensitive": SENSITIVE_COMPONENTS, "resilient": RESILIENT_COMPONENTS}


@dataclass(frozen=True)
class Selection:
    layers: frozenset[int] | None  # None: every layer
    components: frozenset[str]
    stages: frozenset[str]

    @classmethod
    def parse(
        cls, layers: str = "all", components: str = "all", stages: str = "all", num_layers: int | None = None
    ) -> Selection:
        """Patterns like layers="0-3,29", components="q,k,o_proj,fc2,qk", stages="prefill"."""
        return cls(_parse_layers(layers, num_layers), _parse_components(components), _parse_stages(stages))

    def matches(self, layer: int | None, component: str, stage: str) -> bool:
        if component not in self.components or stage not in self.stages:
            return False
        return self.layers is None or layer is None or layer in self.layers


def _parse_layers(pattern: str, num_layers: int | None) -> frozenset[int] | None:
    pattern = pattern.strip()
    if pattern == "all":
        return None
    layers: set[int] = set()
    for part in pattern.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise InputError(f"bad layer pattern {pattern!r}: use 'all' or e.g. '0-3,29'") from None
        if first < 0 or last < first:
            raise InputError(f"bad layer range {part.strip()!r} in {pattern!r}")
        if num_layers is not None and last >= num_layers:
            raise InputError(f"layer {last} out of range: the model has layers 0-{num_layers - 1}")
        layers.update(range(first, last + 1))
    return frozenset(layers)


def _parse_components(pattern: str) -> frozenset[str]:
    chosen: set[str] = set()
    for raw in pattern.split(","):
        name = raw.strip()
        if name in _GROUPS:
            chosen.update(_GROUPS[name])
        elif name in COMPONENTS:
            chosen.add(name)
        elif name in MODULE_COMPONENTS:
            chosen.add(MODULE_COMPONENTS[name])
        else:
            known = ", ".join([*_GROUPS, *COMPONENTS, *MODULE_COMPONENTS])
            raise InputError(f"unknown component {name!r}; known: {known}")
    return frozenset(chosen)


def layer_components(pattern: str) -> tuple[str, ...]:
    """Decoder-layer components a pattern of names and groups names, in order, each once (lm_head has no layer)."""
    chosen: list[str] = []
    for name in (raw.strip() for raw in pattern.split(",")):
        if name not in _GROUPS and name not in LAYER_COMPONENTS:
            raise InputError(f"unknown component {name!r}: use {', '.join(LAYER_COMPONENTS)} or {', '.join(_GROUPS)}")
        chosen += [c for c in _GROUPS.get(name, (name,)) if c in LAYER_COMPONENTS and c not in chosen]
    return tuple(chosen)


def named_components(pattern: str) -> frozenset[str]:
    """The components a pattern names one by one, not through a group such as 'all' or 'linear'."""
    names = [name for name in (raw.strip() for raw in pattern.split(",")) if name not in _GROUPS]
    return _parse_components(",".join(names)) if names else frozenset()


def _parse_stages(pattern: str) -> frozenset[str]:
    if pattern.strip() == "all":
        return frozenset(STAGES)
    stages = {s.strip() for s in pattern.split(",")}
    unknown = stages - set(STAGES)
    if unknown:
        raise InputError(f"unknown stage(s) {sorted(unknown)}; use 'all', 'prefill' or 'decode'")
    return frozenset(stages)
