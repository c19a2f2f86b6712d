import json

import pytest
import torch

import unlearnkit as uk
from unlearnkit import checkpoint
from unlearnkit.errors import CheckpointError, ConfigError
from unlearnkit.training import TrainConfig, epoch_order, run_epochs


def _params_equal(a, b):
    return all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_same_config_twice_gives_bit_identical_weights(digits, optimizer):
    cfg = TrainConfig(epochs=2, optimizer=optimizer, lr=0.01)
    a = uk.train(uk.models.make("mlp", digits, hidden=(32,)), digits.train, seed=3, config=cfg)
    b = uk.train(
        uk.models.make("mlp", digits, hidden=(32,), seed=9), digits.train, seed=3, config=cfg
    )
    assert _params_equal(a, b)
    c = uk.train(uk.models.make("mlp", digits, hidden=(32,)), digits.train, seed=4, config=cfg)
    assert not _params_equal(a, c)


def test_train_learns_and_leaves_its_input_alone(digits):
    template = uk.models.make("logreg", digits)
    before = {k: v.clone() for k, v in template.state_dict().items()}
    model = uk.train(template, digits.train, seed=0, epochs=3)
    assert all(torch.equal(before[k], v) for k, v in template.state_dict().items())
    assert uk.accuracy(model, digits.test) > 90
    assert model.train_info["train_ids_sha256"] == digits.train.ids_sha256()


def test_resuming_epochs_matches_an_uninterrupted_run(digits):
    cfg = TrainConfig(epochs=3, lr=0.02)
    full = uk.models.make("logreg", digits, seed=0)
    run_epochs(full, digits.train, config=cfg, seed=5)
    parts = uk.models.make("logreg", digits, seed=0)
    opt = run_epochs(parts, digits.train, config=cfg, seed=5, epochs=range(0, 1))
    run_epochs(parts, digits.train, config=cfg, seed=5, epochs=range(1, 3), optimizer=opt)
    assert _params_equal(full, parts)


def test_epoch_order_depends_on_seed_and_epoch():
    assert torch.equal(epoch_order(10, seed=1, epoch=2), epoch_order(10, seed=1, epoch=2))
    assert not torch.equal(epoch_order(50, seed=1, epoch=2), epoch_order(50, seed=1, epoch=3))


def test_bad_config():
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig().replace(momentun=0.5)


def test_checkpoint_round_trip_and_corruption(tmp_path, digits):
    model = uk.train(uk.models.make("mlp", digits, hidden=(8,)), digits.train, seed=0, epochs=1)
    path = checkpoint.save(
        model, tmp_path / "m", metadata={"seed": 0, "train_info": model.train_info}
    )
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["train_info"]["config"]["epochs"] == 1
    loaded, _ = checkpoint.load(path, expect={"seed": 0})
    assert _params_equal(model, loaded)

    with pytest.raises(CheckpointError, match="does not match: seed"):
        checkpoint.load(path, expect={"seed": 1})
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "missing")


def test_checkpoint_from_a_newer_format_is_refused(tmp_path, digits):
    model = uk.models.make("logreg", digits)
    path = checkpoint.save(model, tmp_path / "m")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["format_version"] = 99
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="upgrade unlearnkit"):
        checkpoint.load(path)


class _WithBareParameter(torch.nn.Module):
    """A user module that PyTorch cannot re-initialise: a parameter without reset_parameters."""

    def __init__(self):
        super().__init__()
        self.temperature = torch.nn.Parameter(torch.ones(1))
        self.linear = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(x) / self.temperature


def test_a_module_that_cannot_be_reinitialised_says_so_and_a_factory_works(digits):
    with pytest.raises(ConfigError, match="reset_parameters.*factory"):
        uk.train(_WithBareParameter(), digits.train, seed=0, epochs=1)
    a = uk.train(_WithBareParameter, digits.train, seed=3, epochs=1)
    b = uk.train(_WithBareParameter, digits.train, seed=3, epochs=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    split = uk.select_forget(digits, "class:3")
    golden = uk.methods.get("golden")(factory=_WithBareParameter, config=uk.TrainConfig(epochs=1))
    out = golden.unlearn(a, split)
    assert isinstance(out, _WithBareParameter) and out is not a


def test_train_fits_the_models_preprocessing_on_its_own_training_data(digits):
    split = uk.select_forget(digits, "class:3")
    model = uk.train(uk.models.make("logreg", digits), split.retain, seed=0, epochs=1)
    X = split.retain.X.double()
    assert torch.allclose(model.preprocess[0].mean.double(), X.mean(0), atol=1e-5)
