"""The committed category embeddings are what featurepipe/embeddings.py builds (issue 13)."""

from __future__ import annotations

import json

import numpy as np

from featurepipe import embeddings
from featurepipe.generate import CATEGORIES


def test_the_committed_vectors_are_rebuilt_by_the_documented_method() -> None:
    committed = json.loads(embeddings.EMBEDDINGS_FILE.read_text())
    assert embeddings.same(committed, embeddings.render())
    vectors = embeddings.load()
    assert sorted(vectors) == sorted(CATEGORIES)
    for vector in vectors.values():
        assert len(vector) == embeddings.DIMENSIONS == 16
        assert abs(np.linalg.norm(vector) - 1) < 1e-5  # unit length (rounded to 6 decimals)


def test_categories_bought_by_the_same_people_end_up_closer() -> None:
    """Two categories with products bought together by one population, a third bought by another:
    the first two's vectors are closer than either is to the third."""
    rng = np.random.default_rng(1)
    users, products = [], []
    for user in range(600):
        shop = (0, 1) if user < 300 else (2,)  # categories 0 and 1 share their buyers
        for _ in range(12):
            category = shop[rng.integers(len(shop))]
            users.append(user)
            products.append((category + 1) * 1000 + 1 + rng.integers(0, 20))
    vectors = embeddings.build(np.array(users), np.array(products), ("a", "b", "c"), dimensions=4)
    cos = {pair: float(np.dot(vectors[pair[0]], vectors[pair[1]])) for pair in (("a", "b"), ("a", "c"), ("b", "c"))}
    assert cos[("a", "b")] > cos[("a", "c")] and cos[("a", "b")] > cos[("b", "c")], cos
