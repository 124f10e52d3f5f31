"""Per-step latency of the CUDA path at batch size 2 (CUDA graphs vs eager), on synthetic data: what bounds a run on
a GPU. Run on the device from the repository root: python -m bench.device.step_latency (its log of the 2026-11-25
H100 session: reports/full/device/step_latency.txt)."""
import time
from normlib.run import data, train
from normlib.config import RunConfig
d = data.synthetic(n_train=2000, n_test=500, seed=0)
s = data.splits(d, 0, 0, 0, 0)
for norm, comp in [("batch", "auto"), ("group", "auto"), ("batch", "none")]:
    t = time.time()
    r = train.train(RunConfig(norm=norm, batch_size=2, epochs=2, train_size=0, test_size=0, compile=comp,
                              device="cuda"), s)
    h = r["history"]
    print(norm, comp, r["compile"], r["compile_fallback"],
          "epoch1 %.1f s, epoch2 %.3f ms/step" % (h[0]["train_seconds"], 1000 * h[1]["train_seconds"] / 1000),
          "wall %.0f" % (time.time() - t), flush=True)
