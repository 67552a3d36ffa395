import os
import random
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one core per test worker (-n 2 on a 2-core machine): the frameworks' own thread pools would otherwise fight
    # over the cores; set before any framework is imported
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(_name, "1")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

TEST_SEED = 0


@pytest.fixture(autouse=True)
def _seed_every_random_draw() -> None:
    """Seed every global random generator before each test, so that a test drawing without an explicit seed (a new
    head's initialization, a collator's masking, a Keras initializer) draws the same numbers in every run and in any
    test order. Frameworks are seeded only once imported: seeding must not import them (import-hygiene tests)."""
    random.seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(TEST_SEED)
    if "keras" in sys.modules:
        # python, numpy and the backend's global seed, plus Keras' own SeedGenerator
        sys.modules["keras"].utils.set_random_seed(TEST_SEED)
    elif "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(TEST_SEED)
