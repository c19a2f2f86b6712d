import pytest
import torch

import unlearnkit as uk
from unlearnkit.errors import ConfigError, UnknownModelError


@pytest.mark.parametrize("name", ["linear", "logreg", "mlp", "cnn", "resnet18"])
def test_every_model_runs_a_forward_pass_on_images(name):
    model = uk.models.make(name, input_shape=(1, 28, 28), num_outputs=10)
    out = model(torch.zeros(3, 1, 28, 28))
    assert out.shape == (3, 10)


def test_mlp_widths_are_configurable():
    model = uk.models.make("mlp", input_shape=(8,), num_outputs=3, hidden=(5, 4, 2))
    widths = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [5, 4, 2, 3]


def test_from_spec_rebuilds_the_architecture(digits):
    model = uk.models.make("mlp", digits, hidden=(16,))
    rebuilt = uk.models.from_spec(model.spec)
    assert [p.shape for p in model.parameters()] == [p.shape for p in rebuilt.parameters()]


def test_seeded_initialisation():
    a = uk.models.make("mlp", input_shape=(4,), num_outputs=2, seed=1)
    b = uk.models.make("mlp", input_shape=(4,), num_outputs=2, seed=1)
    c = uk.models.make("mlp", input_shape=(4,), num_outputs=2, seed=2)
    assert torch.equal(a.net[1].weight, b.net[1].weight)
    assert not torch.equal(a.net[1].weight, c.net[1].weight)


def test_bad_names_and_options():
    with pytest.raises(UnknownModelError, match="valid names: cnn, linear, logreg, mlp, resnet18"):
        uk.models.make("vgg", input_shape=(4,), num_outputs=2)
    with pytest.raises(ConfigError, match="bad options for model 'mlp'"):
        uk.models.make("mlp", input_shape=(4,), num_outputs=2, depth=3)
    with pytest.raises(ConfigError, match="image inputs"):
        uk.models.make("cnn", input_shape=(64,), num_outputs=10)
