"""observer_pairs.csv: the machine observer's per-pair scores and outcomes agree with its fool rate."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import sr_data
from metrics.machine_eval import machine_rates
from metrics.observer_pairs import OBSERVER_PAIR_COLUMNS, observer_pairs, write_observer_pairs

CFG = dict(steps=8, batch_size=8, folds=2, widths=[4], n_boot=50, threads=1)


@pytest.fixture(scope="module")
def pairs():
    hr = np.array(sr_data.load_pairs("fashion-mnist", "test").hr[:60])
    real, other = hr[:30], hr[30:]
    bicubic = sr_data.to_uint8(sr_data.upsample(sr_data.downsample(sr_data.to_float(torch.from_numpy(real)), 4), 4))
    return real, other, bicubic.numpy()


def test_per_pair_outcomes_average_to_the_rate_and_the_csv_has_one_row_per_pair(pairs, tmp_path):
    real, other, bicubic = pairs
    cache = tmp_path / "observer.json"
    table = machine_rates(real, {"bicubic": bicubic, "other": other}, CFG, seed=0, cache_path=cache, log=print)
    ids = [f"img{i}" for i in range(len(real))]
    path = write_observer_pairs(tmp_path / "observer_pairs.csv", table, ids)
    out = pd.read_csv(path, dtype={"image_id": str})
    assert list(out.columns) == OBSERVER_PAIR_COLUMNS and len(out) == 2 * len(real)
    assert out[out.row == "other"].image_id.tolist() == ids
    assert out[["score_real", "score_fake"]].notna().all().all()  # every pair was held out once
    by_row = out.groupby("row").fooled.mean() * 100
    for r in table.itertuples():
        assert by_row[r.method] == pytest.approx(r.machine_fooled)  # the per-pair outcomes are observer.csv's rate
    # a cached result carries the scores too, and an old cache entry without them is recomputed
    again = machine_rates(real, {"other": other}, CFG, seed=0, cache_path=cache, log=print)
    assert observer_pairs(again.attrs["results"], ids).equals(out[out.row == "other"].reset_index(drop=True))
    old = json.loads(cache.read_text())
    for entry in old.values():
        entry["result"].pop("score_real")
    cache.write_text(json.dumps(old))
    lines = []
    machine_rates(real, {"other": other}, CFG, seed=0, cache_path=cache, log=lines.append)
    assert "cached" not in lines[0]
    with pytest.raises(ValueError, match="pair scores for 3 image ids"):
        observer_pairs(table.attrs["results"], ids[:3])
