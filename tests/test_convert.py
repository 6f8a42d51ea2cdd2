"""`python -m dt.convert`: Hugging Face DecisionTransformerModel folders to dt checkpoints that dt.evaluate runs,
and back; one-line errors for what cannot convert. The tests that build HF's model need transformers (skipped
without it, a failure with DT_REQUIRE_TRANSFORMERS=1); the round trip and the errors need only safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dt.convert import STATS_FILE, from_hf, run, to_hf_folder
from dt.errors import DTError
from dt.evaluate import evaluate
from dt.evaluation.policy import load_module
from tests.helpers import REPO_ROOT, TINY_ID, compose_eval, require_transformers

DT_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "pre_house_plan_dt.ckpt"  # written by dt.train: K=5, hopper
BC_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "pre_house_plan_bc.ckpt"
TINY = [f"dataset.id={TINY_ID}", "dataset.download=false", "K=5", "eval.episodes=2", "eval.max_ep_len=20"]


def hf_folder(path: Path):
    """A random HF DecisionTransformerModel for Hopper (11-dim states, 3-dim actions) saved by save_pretrained."""
    transformers = require_transformers()
    torch.manual_seed(0)
    config = transformers.DecisionTransformerConfig(state_dim=11, act_dim=3, hidden_size=32, n_layer=2, max_ep_len=1000)
    model = transformers.DecisionTransformerModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)  # far from init: wpe row 0 and every weight matter
    model.save_pretrained(path)
    return model


def test_from_hf_checkpoint_evaluates_and_acts_as_hf(tiny_minari: str, tmp_path: Path) -> None:
    hf = hf_folder(tmp_path / "hf")
    ckpt = run(["from-hf", f"hf={tmp_path / 'hf'}", f"out={tmp_path / 'dt.ckpt'}", *TINY])
    results = evaluate(compose_eval([f"ckpt={ckpt}", "device=cpu"]))
    assert [r.target_return for r in results] == [3600.0, 1800.0] and all(len(r.returns) == 2 for r in results)
    # The module's own normalization (state mean/std from the dataset, return scale from the env) in front of the
    # converted weights gives HF's actions for the inputs the official code feeds it.
    module = load_module(str(ckpt)).eval()
    assert module.hparams.net["n_layer"] == 2 and module.hparams.max_ep_len == 1000
    g = torch.Generator().manual_seed(3)
    states, actions = torch.randn(2, 5, 11, generator=g), torch.rand(2, 5, 3, generator=g) * 2 - 1
    returns, timesteps = torch.rand(2, 5, generator=g) * 3600, torch.arange(5).repeat(2, 1) + 7
    assert_same_actions(module, hf, returns, states, actions, timesteps)


def test_round_trip_dt_hf_dt_is_identical(tmp_path: Path) -> None:
    folder = to_hf_folder(DT_FIXTURE, tmp_path / "hf")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", STATS_FILE}
    back = from_hf(folder, tmp_path / "back.ckpt", ["K=5"])  # the statistics: the folder's state_stats.json
    before, after = load_module(str(DT_FIXTURE)).state_dict(), load_module(str(back)).state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    # The older format of published checkpoints: pytorch_model.bin, with transformers 4.x's attention buffers.
    from safetensors.torch import load_file

    weights = load_file(folder / "model.safetensors")
    weights |= {"encoder.h.0.attn.bias": torch.ones(1, 1, 8, 8), "encoder.h.0.attn.masked_bias": torch.tensor(-1e4)}
    torch.save(weights, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    old = from_hf(folder, tmp_path / "old.ckpt", ["K=5"], state_stats=folder / STATS_FILE)
    assert all(torch.equal(t, load_module(str(old)).state_dict()[k]) for k, t in before.items())


def test_to_hf_folder_loads_in_transformers(tmp_path: Path) -> None:
    transformers = require_transformers()
    folder = to_hf_folder(DT_FIXTURE, tmp_path / "hf")
    hf = transformers.DecisionTransformerModel.from_pretrained(folder).eval()
    module = load_module(str(DT_FIXTURE)).eval()
    states, actions = torch.randn(1, 5, 11), torch.rand(1, 5, 3) * 2 - 1
    returns, timesteps = torch.full((1, 5), 1800.0), torch.arange(5)[None]
    assert_same_actions(module, hf, returns, states, actions, timesteps)


def test_bad_input_gets_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = to_hf_folder(DT_FIXTURE, tmp_path / "hf")
    stats = folder / STATS_FILE
    out = tmp_path / "out.ckpt"
    with pytest.raises(DTError, match="has no config.json: pass a Hugging Face DecisionTransformerModel folder"):
        from_hf(tmp_path, out, ["K=5"], state_stats=stats)
    (tmp_path / "nostats").mkdir()
    for name in ("config.json", "model.safetensors"):
        (tmp_path / "nostats" / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(DTError, match="carry no state mean/std: pass the dataset .* or state_stats="):
        from_hf(tmp_path / "nostats", out, ["K=5"])
    with pytest.raises(DTError, match="not a JSON file with state_mean and state_std"):
        from_hf(folder, out, ["K=5"], state_stats=folder / "config.json")
    with pytest.raises(DTError, match="the HF model takes 11-dim states and 3-dim actions but the data has 3-dim"):
        three = tmp_path / "three.json"
        three.write_text(json.dumps({"state_mean": [0.0] * 3, "state_std": [1.0] * 3}))
        from_hf(folder, out, ["K=5", "env=pendulum"], state_stats=three)
    with pytest.raises(DTError, match="holds a BCModule, not a Decision Transformer"):
        to_hf_folder(BC_FIXTURE, tmp_path / "bc")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_size": 64, "n_inner": 256}))
    with pytest.raises(DTError, match=r"weight \S+ is \(\d+, 32\) in the folder but config.json implies"):
        from_hf(folder, out, ["K=5"], state_stats=stats)
    (folder / "config.json").write_text(json.dumps({**config, "n_inner": 100}))
    with pytest.raises(DTError, match="n_inner=100 .* which dt's model cannot express"):
        from_hf(folder, out, ["K=5"], state_stats=stats)
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(DTError, match="holds a gpt2 model, not a DecisionTransformerModel"):
        from_hf(folder, out, ["K=5"], state_stats=stats)
    assert not out.exists()  # nothing half-written by any of them
    for argv, message in (
        (["from-hf", f"out={out}"], "from-hf needs hf=..."),
        (["upload"], "usage: python -m dt.convert from-hf"),
        (["to-hf", f"ckpt={DT_FIXTURE}", f"out={tmp_path}", "K=5"], "to-hf takes only ckpt=... and out=..."),
    ):
        with pytest.raises(SystemExit):
            run(argv)
        err = capsys.readouterr().err.strip()
        assert err.startswith("dt: error: ") and message in err and "\n" not in err


def assert_same_actions(module, hf, returns, states, actions, timesteps) -> None:
    """The module's own normalization (state mean/std, return scale) in front of its weights gives HF's actions
    for the inputs the official code feeds HF."""
    with torch.no_grad():
        ours = torch.tanh(module(returns, states, actions, timesteps))
        _, theirs, _ = hf(
            states=module.normalize_states(states),
            actions=actions,
            rewards=None,
            returns_to_go=(returns / module.return_scale)[..., None],
            timesteps=timesteps,
            return_dict=False,
        )
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
