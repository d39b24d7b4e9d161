"""`prsr study init`: build a study database from saved predictions.

Reads `<predictions>/truth.npz` (`lr` uint8 [N,C,8,8], `hr` uint8 [N,C,32,32], `ids`) and
`<predictions>/<method>.npz` (`sr` uint8 [N,C,32,32], `ids`), and writes:

- every image the study can show, as PNG (the ground truth, each method's output, the golden image),
  so the database is self-contained;
- the golden pairs: the ground truth against the bicubic up-sampling of the same 8x8 input with
  strong i.i.d. Gaussian noise (SD `GOLDEN_NOISE_SD` grey levels). Blurred *and* grainy is nothing a
  camera produces, whatever the method under test; the bicubic image alone is not used because it
  looks like the blurry methods being measured (ResNet-L2), so failing it would track the rater's
  fool rate instead of their attention;
- a balanced plan of rater slots: `raters_per_method` slots per method, interleaved (slot order
  m0, m1, ..., m0, m1, ...) so that claiming the lowest free slot fills methods evenly; each slot
  gets `n_practice + n_test` distinct images taken cyclically from a per-method permutation of the
  pool, so image use differs by at most one across images; golden trials sit one per block of
  `n_test / n_golden` counted positions; left/right is balanced and shuffled within a rater.

Everything is checked (settings, predictions, the plan) before the database is touched, and a SQLite
file that `init` created is removed again if writing fails: a refused `init` leaves no file behind.
"""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import insert, inspect
from sqlalchemy.engine import make_url

from baselines.registry import study_rows

from . import store
from .analysis_plan import canonical_json, make_analysis_plan, plan_sha256
from .config import PLATFORMS, check_code, check_completion_url, load_config
from .db import dispose_engine, get_engine, is_sqlite, normalise_url
from .schema import images, metadata, plan_items, slots, study
from .staircase import StaircaseRule
from .store import DEFAULT_CLAIM_WINDOW_S, DEFAULT_MAX_CLAIMS, utcnow

GOLDEN_NOISE_SD = 48.0  # grey levels (of 255)
DISPLAY_PX = 192  # CSS pixels per 32x32 image (6x, nearest-neighbour)
EXPOSURE_MS = 1000
FIXATION_MS = 500
ABANDON_AFTER_S = 30 * 60


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image [H, W, C] with C = 1 (grey) or 3 (RGB)."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"expected a uint8 image [H, W, 1 or 3], got {img.dtype} {img.shape}")
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes, channels: int | None = None) -> np.ndarray:
    """A uint8 image [H, W, C] from PNG bytes (C = 1 for grey PNGs, 3 for RGB)."""
    arr = np.asarray(Image.open(io.BytesIO(data)))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise ValueError(f"{path} lacks the arrays {missing}; it holds {z.files}")
        return {k: z[k] for k in keys}


def _check_images(path: Path, name: str, arr: np.ndarray, size: int, n: int) -> None:
    if (
        arr.dtype != np.uint8
        or arr.ndim != 4
        or arr.shape[0] != n
        or arr.shape[1] not in (1, 3)
        or arr.shape[2:] != (size, size)
    ):
        raise ValueError(
            f"{path}: `{name}` must be uint8 [{n}, C, {size}, {size}] with C in (1, 3), "
            f"got {arr.dtype} {list(arr.shape)}"
        )


def _ids(path: Path, ids: np.ndarray, n: int) -> list[str]:
    out = [str(i) for i in np.asarray(ids).reshape(-1).tolist()]
    if len(out) != n:
        raise ValueError(f"{path}: `ids` has {len(out)} entries for {n} images")
    if len(set(out)) != len(out) or any(not 0 < len(i) <= 64 for i in out):
        raise ValueError(f"{path}: `ids` must be unique and 1-64 characters long")
    return out


def available_methods(predictions: Path) -> list[str]:
    """Method names with a `<method>.npz` in the folder (truth.npz excluded), sorted."""
    return sorted(p.stem for p in Path(predictions).glob("*.npz") if p.stem != "truth")


def golden_images(lr: np.ndarray, seed: int) -> np.ndarray:
    """The degraded image of each golden pair: bicubic x4 up-sampling of `lr` (uint8 [N,C,8,8]) plus
    Gaussian noise of SD `GOLDEN_NOISE_SD` levels, rounded and clipped; uint8 [N,C,32,32]."""
    # lazy: torch costs seconds to import, and the app and the export load this module for decode_png only
    import torch  # noqa: PLC0415

    from sr_data import to_float, to_uint8, upsample  # noqa: PLC0415  (imports torch)

    up = upsample(to_float(torch.from_numpy(lr)), 4)
    gen = torch.Generator().manual_seed(seed)
    noisy = (up + torch.randn(up.shape, generator=gen) * (GOLDEN_NOISE_SD / 255.0)).clamp(0.0, 1.0)
    return to_uint8(noisy).numpy()


def golden_positions(n_test: int, n_golden: int, rng: np.random.Generator) -> list[int]:
    """Golden positions among the counted trials 0..n_test-1: one at random inside each of n_golden
    near-equal consecutive blocks, so golden questions are spread over the session."""
    if n_golden == 0:
        return []
    return [int(rng.choice(block)) for block in np.array_split(np.arange(n_test), n_golden)]


def balanced_sides(n: int, rng: np.random.Generator) -> list[str]:
    """n sides, half "left" and half "right" (one more "left" if n is odd, then shuffled)."""
    sides = ["left"] * ((n + 1) // 2) + ["right"] * (n // 2)
    rng.shuffle(sides)
    return sides


def too_few_images(n_images: int, n_practice: int, n_test: int, n_golden: int) -> str:
    """The message for a pool smaller than one session, naming the options that fix it and values that fit."""
    practice = min(n_practice, max(0, n_images // 5))
    trials = max(1, n_images - practice)
    golden = min(n_golden, max(0, trials // 9) or (1 if n_golden else 0))
    return (
        f"the predictions hold {n_images} images common to truth and every method, but each rater needs "
        f"{n_practice + n_test} distinct images ({n_practice} practice + {n_test} trials, golden included). "
        f"For a small pilot lower --n-practice / --n-trials / --n-golden so that practice + trials <= {n_images}, "
        f"e.g. `prsr study init ... --n-practice {practice} --n-trials {trials} --n-golden {golden}` "
        "(Python: n_practice, n_test, n_golden); for the full protocol predict more images (`prsr eval`)"
    )


def build_plan(
    methods: list[str], pool: list[str], raters_per_method: int, n_practice: int, n_test: int, n_golden: int, seed: int
) -> tuple[list[dict], list[dict]]:
    """The slots (slot_id, slot_order, method) and their plan items (slot_id, position, is_practice,
    is_golden, image_id, real_side). Positions 0..n_practice-1 are practice, the rest counted."""
    k = n_practice + n_test
    if len(pool) < k:
        raise ValueError(too_few_images(len(pool), n_practice, n_test, n_golden))
    rng = np.random.default_rng(seed)
    perms = {m: rng.permutation(len(pool)) for m in methods}
    slot_rows, items = [], []
    for s in range(raters_per_method):
        for mi, method in enumerate(methods):
            slot_id = len(slot_rows) + 1
            slot_rows.append(dict(slot_id=slot_id, slot_order=len(slot_rows), method=method, status="free"))
            chosen = [pool[perms[method][(s * k + j) % len(pool)]] for j in range(k)]
            golden = set(golden_positions(n_test, n_golden, rng))
            sides = balanced_sides(n_practice, rng) + balanced_sides(n_test, rng)
            for pos, image_id in enumerate(chosen):
                counted = pos - n_practice
                items.append(
                    dict(
                        slot_id=slot_id,
                        position=pos,
                        is_practice=counted < 0,
                        is_golden=counted in golden,
                        image_id=image_id,
                        real_side=sides[pos],
                    )
                )
    return slot_rows, items


def _crowd_settings(crowd: dict | None) -> dict:
    """The study row's crowd columns from a `load_config` dict (defaults filled in, values checked)."""
    crowd = dict(crowd) if crowd is not None else load_config(None)
    crowd.setdefault("texts", load_config(None)["texts"])
    platform = crowd.get("platform") or "none"
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {PLATFORMS}, got {platform!r}")
    code = crowd.get("completion_code")
    max_claims = crowd.get("max_claims_per_client")
    max_claims = DEFAULT_MAX_CLAIMS if max_claims is None else int(max_claims)
    window = crowd.get("claim_window_min")
    window_s = int(round(60 * float(window))) if window else DEFAULT_CLAIM_WINDOW_S
    attention = crowd.get("attention_max_misses")
    if max_claims < 0 or window_s < 1 or (attention is not None and int(attention) < 0):
        raise ValueError("max_claims_per_client and attention_max_misses must be >= 0, claim_window_min > 0")
    response = crowd.get("response_window_ms")
    if response is not None and (isinstance(response, bool) or int(response) != response or response < 1):
        raise ValueError(f"response_window_ms must be an integer >= 1 (ms), or omitted for no window; got {response!r}")
    return dict(
        platform=platform,
        completion_url=check_completion_url(crowd.get("completion_url")),
        completion_code=None if code in (None, "per-rater") else check_code(str(code), "--completion-code"),
        require_pid=bool(crowd.get("require_pid", False)),
        screenout=json.dumps(crowd.get("screenout") or {}),
        texts=json.dumps(crowd["texts"]),
        max_claims_per_client=max_claims,
        claim_window_s=window_s,
        attention_max_misses=None if attention is None else int(attention),
        response_window_ms=None if response is None else int(response),
    )


def _check_protocol(**values) -> None:
    """Each protocol size is an integer at or above its minimum; golden pairs fit the counted trials."""
    minimum = dict(
        raters_per_method=1, n_test=1, n_practice=0, n_golden=0, display_px=32, exposure_ms=1, abandon_after_s=1
    )
    for name, v in values.items():
        if isinstance(v, bool) or int(v) != v or v < minimum[name]:
            raise ValueError(f"{name} must be an integer >= {minimum[name]}, got {v}")
    if values["n_golden"] > values["n_test"]:
        raise ValueError(f"n_golden ({values['n_golden']}) cannot exceed n_test ({values['n_test']})")


def _choose_methods(predictions: Path, methods: list[str] | None) -> list[str]:
    """The methods to study: as given (each with a .npz), or the paper's study rows present."""
    present = available_methods(predictions)
    if methods is None:
        methods = [m for m in study_rows() if m in present]
        if not methods:
            raise ValueError(
                f"{predictions} holds none of the paper's study rows {list(study_rows())} "
                f"(found {present}); choose with --methods"
            )
    missing = [m for m in methods if m not in present]
    if missing or not methods or len(set(methods)) != len(methods):
        raise ValueError(
            f"--methods {methods}: need distinct methods with a .npz in {predictions} "
            f"(missing {missing}; available {present})"
        )
    for m in methods:
        if m in ("truth", "golden") or not 0 < len(m) <= 64:
            raise ValueError(f"invalid method name {m!r}")
    return methods


def _load_predictions(predictions: Path, methods: list[str]) -> tuple[dict, dict, list[str]]:
    """(truth arrays by id {"hr", "lr": {id: array}}, {method: {id: sr}}, pool): the pool is the ids of
    truth.npz present in every method's file, in truth's order (each pair shows the ground truth and
    the method's output FOR THE SAME INPUT, matched by id)."""
    truth_path = predictions / "truth.npz"
    truth = _load_npz(truth_path, ("lr", "hr", "ids"))
    n = truth["hr"].shape[0] if truth["hr"].ndim == 4 else -1
    _check_images(truth_path, "hr", truth["hr"], 32, n)
    _check_images(truth_path, "lr", truth["lr"], 8, n)
    channels = truth["hr"].shape[1]
    truth_ids = _ids(truth_path, truth["ids"], n)
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for m in methods:
        path = predictions / f"{m}.npz"
        z = _load_npz(path, ("sr", "ids"))
        nm = z["sr"].shape[0] if z["sr"].ndim == 4 else -1
        _check_images(path, "sr", z["sr"], 32, nm)
        if z["sr"].shape[1] != channels:
            raise ValueError(f"{path}: {z['sr'].shape[1]} channels, truth.npz has {channels}")
        outputs[m] = dict(zip(_ids(path, z["ids"], nm), z["sr"]))
    pool = [i for i in truth_ids if all(i in outputs[m] for m in methods)]
    by_id = {key: dict(zip(truth_ids, truth[key])) for key in ("hr", "lr")}
    return by_id, outputs, pool


def _image_rows(truth: dict, outputs: dict, pool: list[str], seed: int) -> list[dict]:
    """One PNG row per (kind, image id): the ground truth, the golden image and each method's output."""
    golden = golden_images(np.stack([truth["lr"][i] for i in pool]), seed)

    def png(x: np.ndarray) -> bytes:  # uint8 [C, H, W] -> PNG of [H, W, C]
        return encode_png(np.ascontiguousarray(x.transpose(1, 2, 0)))

    rows = []
    for k, i in enumerate(pool):
        rows.append(dict(kind="truth", image_id=i, png=png(truth["hr"][i])))
        rows.append(dict(kind="golden", image_id=i, png=png(golden[k])))
        rows.extend(dict(kind=m, image_id=i, png=png(outputs[m][i])) for m in outputs)
    return rows


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases)."""
    return Path(make_url(url).database or "") if is_sqlite(url) else None


def _refuse_existing(url: str) -> None:
    """ValueError if `url` holds a study's tables; never creates a SQLite file to find out."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        return
    existing = set(inspect(get_engine(url)).get_table_names()) & set(metadata.tables)
    if existing:
        raise ValueError(
            f"{url} already holds a study ({sorted(existing)}); "
            "refusing to overwrite it (its answers would be lost) — choose a new --db"
        )


def _write_study(url: str, study_row: dict, image_rows: list, slot_rows: list, items: list) -> None:
    """Create the tables and write everything in one transaction. Refuses a database that holds a study;
    removes a SQLite file this call created if anything fails."""
    path = _sqlite_file(url)
    created = path is not None and not path.exists()
    try:
        _refuse_existing(url)
        engine = get_engine(url)
        store._FIXED.pop(url, None)  # a study re-created at a URL this process used before
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(study).values(**study_row))
            conn.execute(insert(images), image_rows)
            conn.execute(insert(slots), slot_rows)
            conn.execute(insert(plan_items), items)
    except BaseException:
        if created:
            dispose_engine(url)
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
                leftover.unlink(missing_ok=True)
        raise


def _study_row(dataset: str, methods: list[str], sizes: dict, timing: dict, seed: int) -> dict:
    """The study row's protocol columns (the crowd and analysis-plan columns are added by the caller)."""
    return dict(
        id=1,
        dataset=dataset,
        methods=json.dumps(methods),
        n_practice=sizes["n_practice"],
        n_test_trials=sizes["n_test"],
        n_golden=sizes["n_golden"],
        raters_per_method=sizes["raters_per_method"],
        fixation_ms=FIXATION_MS,
        golden_kind=f"bicubic x4 of the 8x8 input + Gaussian noise SD {GOLDEN_NOISE_SD:g} levels",
        seed=seed,
        created_at=utcnow(),
        simulated=False,
        sim_params=None,
        client_salt=secrets.token_hex(16),
        **timing,
    )


def _analysis_plan_row(methods, sizes: dict, exposure_ms, seed, crowd_row: dict, pairs, rules, staircase) -> dict:
    """The study row's `analysis_plan` (canonical JSON) and `analysis_plan_sha256` columns."""
    plan = make_analysis_plan(
        methods=methods,
        **sizes,
        exposure_ms=exposure_ms,
        staircase=None if staircase is None else staircase.to_json(),
        seed=seed,
        attention_max_misses=crowd_row["attention_max_misses"],
        response_window_ms=crowd_row["response_window_ms"],
        pairs=pairs,
        rules=rules,
    )
    return dict(analysis_plan=canonical_json(plan), analysis_plan_sha256=plan_sha256(plan))


def init_study(
    predictions: str | Path,
    db: str | Path,
    *,
    methods: list[str] | None = None,
    raters_per_method: int = 40,
    n_test: int = 45,
    n_practice: int = 10,
    n_golden: int = 5,
    seed: int = 0,
    dataset: str | None = None,
    display_px: int = DISPLAY_PX,
    exposure_ms: int = EXPOSURE_MS,
    abandon_after_s: int = ABANDON_AFTER_S,
    staircase: StaircaseRule | None = None,
    crowd: dict | None = None,
    analysis_pairs: list[tuple[str, str]] | None = None,
    analysis_rules: dict | None = None,
) -> dict:
    """Create the study database `db` from the predictions folder. Refuses an existing study.

    `crowd`: texts and platform settings as returned by `study_app.config.load_config` (keys texts,
    platform, completion_url, completion_code, require_pid, screenout, attention_max_misses,
    max_claims_per_client, claim_window_min, response_window_ms); defaults: today's texts, platform
    "none", one random code per rater, `store.DEFAULT_MAX_CLAIMS` claims per client per hour, no
    response window. `analysis_pairs` / `analysis_rules`: the analysis plan's pairs (default: all) and
    exclusion-rule overrides (`analysis_plan.DEFAULT_RULES`); the plan is stored with its sha256.
    `staircase`: HYPE-time exposures (`study_app.staircase`) instead of the fixed `exposure_ms`, which then
    becomes the rule's longest exposure (the golden pairs').
    Stages: check settings -> choose methods -> load predictions -> plan -> images
    -> write (only the last touches the database).
    Returns a summary dict (url, methods, images, slots, channels, spare_images: images beyond one
    session, i.e. how many replacements of voided pairs can be new to a rater).
    """
    crowd_row = _crowd_settings(crowd)
    if staircase is not None:
        exposure_ms = staircase.grid_ms[-1]
    exposure_row = dict(
        exposure_mode="fixed" if staircase is None else "staircase",
        staircase=None if staircase is None else canonical_json(staircase.to_json()),
    )
    _check_protocol(
        raters_per_method=raters_per_method,
        n_test=n_test,
        n_practice=n_practice,
        n_golden=n_golden,
        display_px=display_px,
        exposure_ms=exposure_ms,
        abandon_after_s=abandon_after_s,
    )
    predictions = Path(predictions)
    if not predictions.is_dir():
        raise FileNotFoundError(f"predictions folder {predictions} does not exist (run `prsr eval` first)")
    methods = _choose_methods(predictions, methods)
    url = normalise_url(db)
    _refuse_existing(url)  # before the slow work; checked again when writing
    truth, outputs, pool = _load_predictions(predictions, methods)
    slot_rows, items = build_plan(methods, pool, raters_per_method, n_practice, n_test, n_golden, seed)
    image_rows = _image_rows(truth, outputs, pool, seed)
    sizes = dict(raters_per_method=raters_per_method, n_test=n_test, n_practice=n_practice, n_golden=n_golden)
    plan_row = _analysis_plan_row(
        methods, sizes, exposure_ms, seed, crowd_row, analysis_pairs, analysis_rules, staircase
    )
    timing = dict(display_px=display_px, exposure_ms=exposure_ms, abandon_after_s=abandon_after_s)
    study_row = _study_row(dataset or predictions.resolve().parent.name, methods, sizes, timing, seed)
    study_row.update(**plan_row, **crowd_row, **exposure_row)
    _write_study(url, study_row, image_rows, slot_rows, items)
    channels = next(iter(truth["hr"].values())).shape[0]
    return dict(
        url=url,
        methods=methods,
        images=len(pool),
        slots=len(slot_rows),
        channels=channels,
        spare_images=len(pool) - n_practice - n_test,
        analysis_plan_sha256=plan_row["analysis_plan_sha256"],
    )
