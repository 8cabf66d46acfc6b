import pytest
import torch

from visrec.models import pairs
from visrec.models.pairs import pair_dots


def inputs(n_left=4, n_right=7, d=5, n=30, slots=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    left = torch.randn(n_left, d, generator=g, dtype=dtype, requires_grad=True)
    right = torch.randn(n_right, d, generator=g, dtype=dtype, requires_grad=True)
    left_of = torch.randint(0, n_left, (n,), generator=g)
    right_of = torch.randint(0, n_right, (n, slots), generator=g)  # duplicate pairs included
    return left, right, left_of, right_of


@pytest.mark.parametrize("chunk", [1, 7, 512])
def test_values_and_gradients_are_the_dense_products(monkeypatch, chunk):
    monkeypatch.setattr(pairs, "CHUNK", chunk)
    left, right, left_of, right_of = inputs()
    got = pair_dots(left, right, left_of, right_of)
    want = (left @ right.T)[left_of[:, None], right_of]
    torch.testing.assert_close(got, want)
    weights = torch.randn(got.shape, dtype=got.dtype)
    (got * weights).sum().backward()
    fast = left.grad.clone(), right.grad.clone()
    left.grad = right.grad = None
    (want * weights).sum().backward()
    torch.testing.assert_close(fast[0], left.grad)
    torch.testing.assert_close(fast[1], right.grad)


def test_gradcheck():
    left, right, left_of, right_of = inputs(n=9, slots=3)
    assert torch.autograd.gradcheck(lambda a, b: pair_dots(a, b, left_of, right_of), (left, right))


def test_float32_same_numbers_each_run_and_one_table_without_grad():
    left, right, left_of, right_of = inputs(n=2_000, dtype=torch.float32)
    right.requires_grad_(False)
    runs = []
    for _ in range(2):
        left.grad = None
        out = pair_dots(left, right, left_of, right_of)
        out.pow(2).sum().backward()
        runs.append((out.detach(), left.grad.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert right.grad is None


def test_no_pairs():
    left, right, _, _ = inputs()
    out = pair_dots(
        left, right, torch.zeros(0, dtype=torch.long), torch.zeros(0, 2, dtype=torch.long)
    )
    assert out.shape == (0, 2)
    out.sum().backward()
    assert not left.grad.any() and not right.grad.any()
