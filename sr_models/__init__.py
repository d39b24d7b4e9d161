"""The pixel-recursive model (conditioning network + gated PixelCNN prior), its samplers and the shared Trainer."""

__all__ = ["PixelRecursiveSR", "ConditioningNetwork", "Trainer", "load_profile"]


def __getattr__(name):
    # each name is imported on first use, so `import sr_models` stays light (no torch model code loaded)
    if name == "PixelRecursiveSR":
        from .pixel_recursive import PixelRecursiveSR  # noqa: PLC0415

        return PixelRecursiveSR
    if name == "ConditioningNetwork":
        from .conditioning import ConditioningNetwork  # noqa: PLC0415

        return ConditioningNetwork
    if name == "Trainer":
        from .trainer import Trainer  # noqa: PLC0415

        return Trainer
    if name == "load_profile":
        from .profiles import load_profile  # noqa: PLC0415

        return load_profile
    raise AttributeError(f"module 'sr_models' has no attribute {name!r}")
