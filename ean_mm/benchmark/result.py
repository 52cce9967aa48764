"""The measurements of one model."""
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .twins import ModelSpec

__all__ = ['Result']


@dataclass
class Result:
    """Params, FLOPs, per-round times (s), memory and profile of one model."""
    spec: ModelSpec
    batch_size: int
    params: int = 0
    flops: Optional[int] = None
    flops_note: str = ''
    infer_s: List[float] = field(default_factory=list)
    train_s: List[float] = field(default_factory=list)
    #: Minor page faults per inference batch, one value per round (CPU).
    infer_faults: List[float] = field(default_factory=list)
    memory: dict = field(default_factory=dict)
    ean_layers: int = 0
    profile: dict = field(default_factory=dict)
    #: Exported-model batch times per runtime (and EAN export form): :func:`.runtime_key`.
    runtime_s: Dict[str, List[float]] = field(default_factory=dict)
    #: Per runtime key: ``{operator type: (ms per batch, nodes per batch)}`` (the runtime's
    #: own profiler).
    runtime_profile: Dict[str, Dict[str, Tuple[float, float]]] = field(default_factory=dict)

    def median(self, key: str) -> Optional[float]:
        """Median of the series ``key`` (``None`` if empty)."""
        values = getattr(self, key)
        return statistics.median(values) if values else None
