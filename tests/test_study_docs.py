"""docs/study-settings.md holds a complete study.yaml: it loads through the loader the app uses
(`study_app.config.load_config`), names every allowed key, text and screen-out reason, and a study built
from it carries those settings (study.json of the export)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from study_app.builder import init_study
from study_app.config import _KEYS, DEFAULT_TEXTS, SCREENOUT_REASONS, format_instructions, load_config
from study_app.db import dispose_engine
from study_app.demo import write_demo_predictions
from study_app.export import write_export

DOC = Path(__file__).resolve().parents[1] / "docs" / "study-settings.md"


def _example(tmp_path: Path) -> Path:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1, "docs/study-settings.md should hold exactly one yaml example"
    path = tmp_path / "study.yaml"
    path.write_text(blocks[0], encoding="utf-8")
    return path


def test_the_documented_study_yaml_is_complete_and_loads(tmp_path):
    path = _example(tmp_path)
    raw = yaml.safe_load(path.read_text())
    assert set(raw) == _KEYS  # every key the loader allows, nothing else
    assert set(raw["texts"]) == set(DEFAULT_TEXTS) and set(raw["screenout"]) == set(SCREENOUT_REASONS)
    cfg = load_config(path)
    assert cfg["texts"]["comments"] is True and cfg["screenout"]["device"] == "CDEVICE"
    shown = format_instructions(
        cfg["texts"]["instructions"], dict(n_practice=10, n_test_trials=45, exposure_ms=1000, response_window_ms=1000)
    )
    assert "**1 second**" in shown and "within **1 second** after the images disappear" in shown

    folder = write_demo_predictions(tmp_path / "runs" / "toy" / "predictions", n=16, methods=("gan",))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    init_study(folder, url, raters_per_method=1, n_test=4, n_practice=2, n_golden=1, crowd=cfg)
    info = json.loads(write_export(url, tmp_path / "out")["study.json"].read_text())
    dispose_engine(url)
    assert (info["platform"], info["completion_code"], info["require_pid"]) == ("prolific", "C1A2B3C4", True)
    assert (info["attention_max_misses"], info["response_window_ms"], info["max_claims_per_client"]) == (1, 1000, 5)
    assert info["claim_window_s"] == 3600 and info["screenout"] == cfg["screenout"]
    assert info["texts"] == cfg["texts"]
