"""The toolkit's app layer: the `prsr` command line (`prsr/commands/`), the stage wiring
(`prsr/pipelines/`) and a small Python API (docs/api.md):

    import prsr
    m = prsr.load_run("runs/fashion-mnist/pixel_recursive")   # the trained method, eval mode
    sr = m.predict(lr)                                        # lr float [B, C, 8, 8] in [0, 1] -> [B, C, 32, 32]
    prsr.psnr(sr, hr), prsr.ssim(sr, hr), prsr.score_images(sr, hr, lr)   # metrics (tensors)
    prsr.score_folders("outputs/", "ground_truth/")           # metrics of image files, Table 1's means
    prsr.load_profile("quick")                                # a shipped profile (package data)

Names are imported when first used (`import prsr` stays light).
"""

from __future__ import annotations

from importlib import import_module

from baselines.registry import load_method

# public name -> "module:attribute" (loaded on first access)
_EXPORTS = {
    "load_profile": "sr_models.profiles:load_profile",
    "evaluate": "prsr.pipelines.evaluate:evaluate",
    "score_folders": "prsr.pipelines.score_folders:score_folders",
    "import_method": "prsr.pipelines.importer:import_method",
    "write_inputs": "prsr.pipelines.inputs:write_inputs",
    "psnr": "metrics:psnr",
    "ssim": "metrics:ssim",
    "ms_ssim": "metrics:ms_ssim",
    "consistency": "metrics:consistency",
    "score_images": "metrics:score_images",
    "METRICS": "metrics:METRICS",
    # the machine observer (issue 11): present once metrics provides it
    "machine_fool_rate": "metrics:machine_fool_rate",
}

__all__ = ["__version__", "load_run", *_EXPORTS]


def load_run(path, device=None):
    """The trained method of a run folder (`runs/<dataset>/<method>/`, as `prsr train` writes it), in eval
    mode on `device` (default: CUDA when present, else CPU). It has `predict(lr)`; the pixel-recursive
    model also `sample(lr, temperature=...)` and `log_prob(lr, hr)` (see DESIGN.md)."""
    return load_method(path, device=device)


def __getattr__(name):
    if name == "__version__":
        from prsr.cli import version  # noqa: PLC0415  prsr.cli loads torch; `import prsr` stays light

        return version()
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prsr' has no attribute {name!r}")
    module, _, attr = _EXPORTS[name].partition(":")
    try:
        return getattr(import_module(module), attr)
    except AttributeError:
        raise AttributeError(f"prsr.{name}: {module} has no {attr!r} in this version") from None
