"""LazyAdam (optimizer=sparse_adam): touched rows get Adam's update, untouched rows stay put, dense
parameters get torch's Adam; the Trainer option trains, resumes and is deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from visrec.errors import ConfigError
from visrec.models import create
from visrec.models.capabilities import TrainOptions
from visrec.training import fit_model
from visrec.training.optim import LazyAdam, use_sparse_gradients


def _adam_row(p, g, m, v, t, lr=0.1, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba (2015), Algorithm 1, one row by hand (numpy, float64)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return p - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps), m, v


def _lookup_step(table, opt, rows):
    opt.zero_grad(set_to_none=True)
    table(torch.tensor(rows)).pow(2).sum().backward()
    opt.step()


def test_lazy_adam_updates_touched_rows_as_adam_and_leaves_the_others():
    torch.manual_seed(0)
    table = nn.Embedding(6, 3)
    use_sparse_gradients(table)
    start = table.weight.detach().double().numpy().copy()
    opt = LazyAdam(table.parameters(), lr=0.1)
    _lookup_step(table, opt, [1, 3, 3])  # row 3 twice: its gradient is summed
    _lookup_step(table, opt, [3, 4])
    after = table.weight.detach().double().numpy()
    # untouched rows (0, 2, 5) keep their values (dense Adam would leave them too: zero moments)
    assert np.array_equal(after[[0, 2, 5]], start[[0, 2, 5]].astype(np.float32))
    # row 1: one Adam step at t=1, then nothing at t=2 (dense Adam would move it by its momentum)
    p1, _, _ = _adam_row(start[1], 2 * start[1], 0.0, 0.0, 1)
    np.testing.assert_allclose(after[1], p1, rtol=1e-5)
    # rows 3 (touched twice, its gradient at t=1 is 2 * 2p) and 4 (first touched at t=2: the bias
    # correction uses the parameter's step count): what dense Adam gives those rows
    dense = nn.Embedding(6, 3)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(start).float())
    ref = torch.optim.Adam(dense.parameters(), lr=0.1)
    _lookup_step(dense, ref, [1, 3, 3])
    _lookup_step(dense, ref, [3, 4])
    assert torch.allclose(table.weight[[3, 4]], dense.weight[[3, 4]], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(table.weight[1], dense.weight[1])  # dense Adam's momentum moved it
    assert float(opt.state[table.weight]["step"]) == 2


def test_fused_lazy_rows_equal_the_per_row_update():
    # fused=True steps every sparse table of a group in one fused Adam pass over their gathered rows:
    # the same rows move, by the per-row update up to float rounding, and the moments agree
    torch.manual_seed(2)
    tables = {fused: [nn.Embedding(7, 3), nn.Embedding(5, 2)] for fused in (False, True)}
    for a, b in zip(tables[False], tables[True], strict=True):
        b.load_state_dict(a.state_dict())
    opts = {}
    for fused, pair in tables.items():
        params = [p for t in pair for p in use_sparse_gradients(t)]
        opts[fused] = LazyAdam(params, lr=0.05, weight_decay=0.01, fused=fused)
    for rows in ([1, 3, 3, 6], [0, 3], [4, 4, 1]):
        for fused, (big, small) in tables.items():
            opts[fused].zero_grad()
            index = torch.tensor(rows)
            (big(index).pow(3).sum() + small(index % 5).sum()).backward()
            opts[fused].step()
    for a, b in zip(tables[False], tables[True], strict=True):
        torch.testing.assert_close(b.weight, a.weight, rtol=1e-6, atol=1e-7)
        want, got = opts[False].state[a.weight], opts[True].state[b.weight]
        torch.testing.assert_close(got["exp_avg_sq"], want["exp_avg_sq"])
        assert float(got["step"]) == float(want["step"]) == 3
    untouched = [2, 5]  # of the 7-row table: never looked up, never moved
    assert torch.equal(tables[True][0].weight[untouched], tables[False][0].weight[untouched])


@pytest.mark.parametrize("fused", [False, True])
def test_lazy_adam_steps_dense_parameters_like_adam(fused):
    torch.manual_seed(1)
    a = nn.Linear(4, 2)
    b = nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 4)
    ours = LazyAdam(a.parameters(), lr=0.05, weight_decay=0.01, fused=fused)
    ref = torch.optim.Adam(b.parameters(), lr=0.05, weight_decay=0.01, fused=fused)
    for _ in range(3):
        for net, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_a_dense_gradient_on_a_sparse_table_updates_every_row():
    """A step where the whole table is read (e.g. VBPR's forward at a huge batch) is Adam's step."""
    table = nn.Embedding(4, 2)
    use_sparse_gradients(table)
    opt = LazyAdam(table.parameters(), lr=0.1)
    _lookup_step(table, opt, [0])
    before = table.weight.detach().clone()
    opt.zero_grad()
    table.weight.sum().backward()  # dense gradient of ones
    opt.step()
    assert not torch.isclose(table.weight, before).any()
    assert float(opt.state[table.weight]["step"]) == 2


def _vbpr(**overrides):
    cfg = {"epochs": 3, "factors": 8, "visual_factors": 4, "batch_size": 32, "lr": 0.01}
    return create("vbpr", cfg | {"patience": 0, "device": "cpu"} | overrides)


def test_sparse_adam_trains_vbpr_deterministically_and_resumes(demo_dataset, tmp_path):
    features = np.random.default_rng(0).random((demo_dataset.n_items, 6), dtype=np.float32)
    users = np.arange(15)
    a = fit_model(_vbpr(optimizer="sparse_adam"), demo_dataset, features)
    b = fit_model(_vbpr(optimizer="sparse_adam"), demo_dataset, features)
    dense = fit_model(_vbpr(), demo_dataset, features)
    assert torch.equal(a.score(users), b.score(users))  # same seed, same numbers
    assert not torch.equal(a.score(users), dense.score(users))  # a different optimiser
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    # interrupted in epoch 3, resumed: the optimiser state round-trips through the checkpoint
    run = tmp_path / "run"

    def crash(epoch, batch):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_model(_vbpr(optimizer="sparse_adam"), demo_dataset, features,
                  TrainOptions(run_dir=run, on_batch=crash))  # fmt: skip
    resumed = fit_model(
        _vbpr(optimizer="sparse_adam"),
        demo_dataset,
        features,
        TrainOptions(run_dir=run, resume=True),
    )
    assert torch.allclose(resumed.score(users), a.score(users), atol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sparse_adam"])
def test_untrained_item_rows_stay_zero(optimizer):
    """The zero-row hook of items without train interactions (sampled as negatives, so their raw
    gradient is not zero) zeroes a dense gradient in place and filters a sparse one."""
    import pandas as pd

    from visrec.data import Dataset, SplitSpec
    from visrec.data.interactions import Interactions

    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{i}", t) for u in range(20) for t, i in enumerate(rng.choice(30, 6, False))
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    extra = [f"i{i}" for i in range(40)]  # i30..i39: catalogue items without interactions
    dataset = Dataset.build(
        Interactions.from_frame(frame), SplitSpec(validation=False), extra_item_ids=extra
    )
    cold = torch.tensor([dataset.items.index(f"i{i}") for i in range(30, 40)])
    features = rng.random((dataset.n_items, 6), dtype=np.float32)
    model = fit_model(_vbpr(optimizer=optimizer, batch_size=8), dataset, features)
    weight = model.module.gamma_item.weight
    assert torch.count_nonzero(weight[cold]) == 0 and torch.count_nonzero(weight) > 0


def test_unknown_optimizer_is_a_config_error():
    with pytest.raises(ConfigError, match="optimizer must be one of adam, sparse_adam"):
        create("vbpr", {"optimizer": "sgd"})


@pytest.mark.parametrize("kernel", [{"fused": True}, {"foreach": True}, {}])
def test_adam_is_torchs_adam_bit_for_bit(kernel):
    # visrec's Adam only calls torch's methods without their torch.compile wrappers
    from visrec.training.optim import Adam

    torch.manual_seed(0)
    ours, theirs = nn.Linear(5, 3), nn.Linear(5, 3)
    theirs.load_state_dict(ours.state_dict())
    opts = [
        Adam(ours.parameters(), lr=0.05, weight_decay=0.01, **kernel),
        torch.optim.Adam(theirs.parameters(), lr=0.05, weight_decay=0.01, **kernel),
    ]
    x = torch.randn(16, 5)
    direct = []
    original = opts[0]._fused_step
    opts[0]._fused_step = lambda: direct.append(original()) or direct[-1]
    for step in range(4):
        if step == 2:  # a scheduler's new rate is read at each step
            for opt in opts:
                opt.param_groups[0]["lr"] = 0.02
        for net, opt in zip((ours, theirs), opts, strict=True):
            opt.zero_grad(set_to_none=True)
            net(x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    # the fused kernel is called directly once the state exists; the others take torch's own step
    assert direct == ([False, True, True, True] if kernel.get("fused") else [False] * 4)
    state = opts[0].state_dict()
    assert state["state"].keys() == opts[1].state_dict()["state"].keys()
    again = Adam(nn.Linear(5, 3).parameters(), lr=0.05)
    again.load_state_dict(state)
    assert float(again.state_dict()["state"][0]["step"]) == 4
    assert again.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="differentiable"):
        Adam(nn.Linear(2, 1).parameters(), differentiable=True)


FIT_IN_A_FRESH_INTERPRETER = """
import sys
import numpy as np
import pandas as pd
from visrec.data import Dataset, SplitSpec
from visrec.data.interactions import Interactions
from visrec.models import create
from visrec.training import fit_model
rng = np.random.default_rng(0)
rows = [(f"u{u}", f"i{i}", t) for u in range(20) for t, i in enumerate(rng.choice(30, 6, False))]
frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
dataset = Dataset.build(Interactions.from_frame(frame), SplitSpec())
fit_model(create("bpr", {"epochs": 2, "batch_size": 16, "device": "cpu"}), dataset)
print("dynamo" if "torch._dynamo" in sys.modules else "clean")
"""


def test_training_does_not_import_torch_compiles_stack():
    # torch.optim's own wrappers import torch._dynamo (~2 s) on first use; a fit must not pay that.
    # A fresh interpreter: this one may have imported it for another test
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", FIT_IN_A_FRESH_INTERPRETER],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "clean"
