"""dt: Decision Transformer research framework (Lightning + Hydra + Minari)."""

__version__ = "0.1.0"
