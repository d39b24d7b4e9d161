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


# One out-of-range value per section, each refused by the `--set` path with a message naming the key and
# what it accepts (the first four reached evaluation before: a negative subset silently evaluated 9,995
# images, 0 died in numpy, batch_size=0 and folds=1 only failed once evaluation got there).
BAD_VALUES = [
    ("eval.subset=-5", "'eval.subset' must be an integer >= 1 or null, got -5"),
    ("eval.subset=0", "'eval.subset' must be an integer >= 1 or null, got 0"),
    ("eval.batch_size=0", "'eval.batch_size' must be an integer >= 1, got 0"),
    ("eval.diversity_temperature=-1", "'eval.diversity_temperature' must be a number > 0, got -1"),
    ("observer.folds=1", "'observer.folds' must be an integer >= 2 or null, got 1"),
    ("observer.widths=[8, 0]", "'observer.widths' must be a list of one or more items, each an integer >= 1"),
    ("data.train_limit=0", "'data.train_limit' must be an integer >= 1 or null, got 0"),
    ("seed=1.5", "'seed' must be an integer, got 1.5"),
    ("methods.gan.train.lr=0", "'methods.gan.train.lr' must be a number > 0, got 0"),
    ("methods.gan.train.optimizer=adamw", "'methods.gan.train.optimizer' must be one of adam, rmsprop_tf, sgd"),
    ("methods.gan.train.d_betas=[0.5, 1.0]", "'methods.gan.train.d_betas' must be a list of 2 items"),
    ("methods.resnet_l2.train.val_images=-1", "'methods.resnet_l2.train.val_images' must be an integer >= 0"),
    ("methods.resnet_l2.train.bf16=yes please", "'methods.resnet_l2.train.bf16' must be true or false"),
    ("corners.canvas=24", "'corners.canvas' must be one of 16, 32, got 24"),
    ("corners.test_size=0", "'corners.test_size' must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_out_of_range_set_is_refused_at_load_naming_the_key(override, message):
    with pytest.raises(ProfileError) as exc:
        load_profile("smoke", overrides=[override])
    assert f"--set {override!r}: profile key {message}" in str(exc.value)


def test_in_range_values_and_null_pass_and_land_in_the_profile():
    p = load_profile("smoke", ["eval.subset=1", "observer.folds=2", "corners.canvas=32", "methods.gan.train.d_lr=1e-4"])
    assert (p["eval"]["subset"], p["observer"]["folds"], p["corners"]["canvas"]) == (1, 2, 32)
    assert p["methods"]["gan"]["train"]["d_lr"] == pytest.approx(1e-4)
    assert load_profile("smoke", ["eval.subset=null"])["eval"]["subset"] is None


def test_out_of_range_yaml_value_is_refused_naming_the_file_and_key(tmp_path):
    profile = load_profile("smoke")
    profile["eval"]["batch_size"] = 0
    path = tmp_path / "zero.yaml"
    path.write_text(yaml.safe_dump(profile))
    with pytest.raises(ProfileError, match=r"zero\.yaml: profile key 'eval\.batch_size' must be an integer >= 1"):
        load_profile(str(path))


def test_eval_with_a_negative_subset_exits_2_before_any_work(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["eval", "--profile", "smoke", "--runs-dir", str(runs), "--set", "eval.subset=-5"])
    assert code == 2
    assert "'eval.subset' must be an integer >= 1 or null, got -5" in capsys.readouterr().err
    assert not runs.exists()  # refused before anything was written
