"""Profiles have a schema: unknown keys (in a YAML file or a `--set PATH=VALUE`) are refused, naming the key
and the nearest valid ones; `--set` really changes what runs; the shipped profiles live in the package."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from prsr.cli import main
from sr_models.profile_schema import ProfileError
from sr_models.profiles import configs_dir, load_profile

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shipped_profiles_are_package_data_and_pass_the_schema(monkeypatch):
    monkeypatch.delenv("PRSR_CONFIGS", raising=False)
    assert configs_dir().parent.name == "sr_models"
    for name in ("smoke", "quick", "paper"):
        assert load_profile(name)["name"] == name


def test_unknown_yaml_key_is_named_with_its_nearest_valid_keys(tmp_path):
    profile = load_profile("smoke")
    profile["methods"]["resnet_l2"]["train"]["stpes"] = 10  # once silently trained the default 1,000 steps
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(profile))
    with pytest.raises(ProfileError, match=r"'methods\.resnet_l2\.train\.stpes'.*did you mean 'steps'") as err:
        load_profile(path)
    assert str(path) in str(err.value)
    profile = load_profile("smoke")
    profile["evl"] = profile.pop("eval")
    with pytest.raises(ProfileError, match=r"unknown profile key 'evl'; did you mean 'eval'"):
        load_profile(profile)


def test_set_overrides_parse_yaml_and_refuse_unknown_paths():
    p = load_profile("smoke", ["methods.gan.train.lr=1e-4", "eval.subset=null", "methods.gan.model.d_widths=[8, 16]"])
    assert p["methods"]["gan"]["train"]["lr"] == 1e-4 and p["eval"]["subset"] is None
    assert p["methods"]["gan"]["model"]["d_widths"] == [8, 16]
    assert load_profile("smoke")["methods"]["gan"]["train"]["lr"] != 1e-4  # the file itself is untouched
    with pytest.raises(ProfileError, match=r"'data\.train_limt'.*did you mean 'train_limit'"):
        load_profile("smoke", ["data.train_limt=5"])
    with pytest.raises(ProfileError, match="PATH=VALUE"):
        load_profile("smoke", ["eval.subset"])
    with pytest.raises(ProfileError, match="is a value, not a section"):
        load_profile("smoke", ["seed.x=1"])


def test_train_set_typo_exits_2_naming_the_key_and_set_trains_exactly_that(tmp_path, capsys):
    runs = tmp_path / "runs"
    common = ["train", "--method", "resnet_l2", "--profile", "smoke", "--runs-dir", str(runs)]
    assert main(common + ["--set", "methods.resnet_l2.train.stpes=3"]) == 2
    err = capsys.readouterr().err
    assert "stpes" in err and "steps" in err
    assert not runs.exists()  # refused before anything was trained or written
    assert main(common + ["--set", "methods.resnet_l2.model.widht=8"]) == 2
    assert "methods.resnet_l2.model.widht" in capsys.readouterr().err and not (runs / "fashion-mnist").exists()

    assert (
        main(common + ["--set", "methods.resnet_l2.train.steps=3", "--set", "methods.resnet_l2.train.val_images=8"])
        == 0
    )
    run = runs / "fashion-mnist" / "resnet_l2"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["steps"] == 3 and config["train"]["val_images"] == 8
    assert config["overrides"] == {"set": ["methods.resnet_l2.train.steps=3", "methods.resnet_l2.train.val_images=8"]}
    assert torch.load(run / "state.pt", weights_only=True)["step"] == 3
