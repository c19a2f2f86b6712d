"""SISA and ARCANE fit + forget on a local Ray cluster (2 CPUs): the same exactness as on
one machine."""

from __future__ import annotations

import math

import pytest
import torch

ray = pytest.importorskip("ray")

from unlearnkit.exact import ARCANE, SISA  # noqa: E402
from unlearnkit.runtime import RayExecutor  # noqa: E402
from unlearnkit.training import TrainConfig  # noqa: E402

pytestmark = pytest.mark.ray

OPTIONS = dict(
    model="mlp",
    model_options={"hidden": [16]},
    shards=3,
    slices=2,
    epochs=3,
    training=TrainConfig(batch_size=32),
    seed=3,
)


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():  # another test left a session: ours must be a fresh 2-CPU one
        ray.shutdown()
    executor = RayExecutor(num_cpus=2)
    yield executor.start()
    executor.close()
    assert not ray.is_initialized()


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_ray_executor_keeps_order_and_surfaces_job_errors(cluster):
    assert ray.cluster_resources()["CPU"] == 2 and cluster.workers == 2
    assert cluster.map(math.sqrt, [1.0, 4.0, 9.0]) == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="math domain error") as info:
        cluster.map(math.sqrt, [1.0, -1.0], labels=["ok", "bad"])
    assert "raised by bad on the ray executor" in info.value.__notes__[0]


def test_sisa_on_ray_is_exact(cluster, digits, tmp_path):
    drop = digits.train.ids[[0, 1, 700, 1200]].tolist()
    on_ray = SISA(**OPTIONS, executor=cluster, store=tmp_path / "ray").fit(digits.train)
    report = on_ray.forget(drop)
    assert len(report.parts) >= 2  # several shards retrained as parallel Ray tasks
    # From-scratch reference without the ids, trained serially in this process.
    golden = SISA(**OPTIONS, executor="serial", store=tmp_path / "golden")
    golden.fit(digits.train, exclude_ids=drop)
    assert set(on_ray.constituents()) == set(golden.constituents()) == {0, 1, 2}
    for shard, model in golden.constituents().items():
        assert same_weights(on_ray.constituents()[shard], model)
    assert [r["request"] for r in on_ray.requests()] == [1]


def test_arcane_on_ray_is_exact(cluster, digits, tmp_path):
    options = dict(hidden=[8], rep_dim=4, blocks=2, epochs=2, rho=0.5, seed=3)
    drop = digits.train.ids[[0, 1, 700, 1200]].tolist()
    on_ray = ARCANE(**options, executor=cluster, store=tmp_path / "ray").fit(digits.train)
    report = on_ray.forget(drop)
    assert len(report.parts) >= 2  # several classes retrained as parallel Ray tasks
    golden = ARCANE(**options, executor="serial", store=tmp_path / "golden")
    golden.fit(digits.train, exclude_ids=drop)
    for c, model in golden.constituents().items():
        assert same_weights(on_ray.constituents()[c], model), c
