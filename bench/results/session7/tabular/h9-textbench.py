"""H9: CPU s of reading the text column of the 1M tabular rows (destination defaults and the
bench's plain settings): numpy(), values(), numpy(aslist=True), 1,000 random rows and the
bench's full read. Run as `PYTHONPATH=<tree> python h9-textbench.py <tree>`; the datasets are
written once under /tmp/h9."""
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, sys.argv[1] + "/bench/peers")
from _common import load_input  # noqa: E402
from lakeformat_dest_peer import LakeFormatDestination  # noqa: E402
from lakeformat_peer import LakeFormat  # noqa: E402

DATA = Path(sys.argv[1]) / ".bench_data" / "scale-1"


def best(f, k=5):
    b, r = 1e9, None
    for _ in range(k):
        a = time.process_time()
        r = f()
        b = min(b, time.process_time() - a)
    return b, r


def main() -> None:
    cols = load_input(DATA, "tabular")
    idx = np.load(DATA / "random_idx-tabular.npy")
    for peer_class, path in ((LakeFormatDestination, "/tmp/h9/dest"), (LakeFormat, "/tmp/h9/plain")):
        p = peer_class()
        if not os.path.exists(path):
            p.write(path, "tabular", cols)
        ds = p.open(path)
        t = ds["text"]
        a, r = best(t.numpy)
        assert r.shape == (len(cols["text"]), 1) and r.dtype.kind == "U" and (r[:, 0] == cols["text"]).all()
        v, rv = best(t.values, 3)
        assert rv == cols["text"].tolist()
        al, _ = best(lambda: t.numpy(aslist=True), 2)  # noqa: B023 - called at once
        rr, rrr = best(t[idx.tolist()].numpy)
        assert (rrr[:, 0] == cols["text"][idx]).all()
        full, _ = best(lambda: p.read_all(ds, "tabular"), 3)  # noqa: B023 - called at once
        print(f"{peer_class.name:16s} text.numpy {a:.4f}  values {v:.4f}  aslist {al:.4f}  random1000 {rr:.4f}  read_all {full:.4f}")


if __name__ == "__main__":
    main()
