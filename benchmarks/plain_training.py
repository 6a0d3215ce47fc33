"""The training phase as a plain Python script (keel's functions, no ZenML): the baseline against
which ZenML's overhead is measured. Usage: plain_training.py SPEC [KEY=VALUE ...]"""

import sys
import time

import keel  # noqa: F401
from keel.data.sources import load_frame
from keel.spec import load_spec
from keel.training.fit import model_hash, predict_scores
from keel.training.in_process import train_in_process
from keel.training.metrics import score

if __name__ == "__main__":
    started = time.perf_counter()
    spec = load_spec(sys.argv[1], sys.argv[2:])
    trained = train_in_process(load_frame(spec.data), spec)
    model = trained.selected.pipeline
    test_metrics = score(trained.test[spec.data.target.column], predict_scores(model, trained.test))
    print(f"plain training finished in {time.perf_counter() - started:.1f} s: model {model_hash(model)[:12]}, "
          f"test roc_auc {test_metrics['roc_auc']:.4f}")
