"""H9: CPU s of the torch loader reading 300,000 text samples (the destination-defaults
dataset h9-textbench.py wrote), with the text-buffer column on or off: `python h9-loadbench.py on off on off`."""
import sys
import time

import lakeformat
from lakeformat.integrations.torch import text_column
from loaders import dataloader

calls = [0]
orig = text_column.text_values


def counting(*a):
    calls[0] += 1
    return orig(*a)


def main() -> None:
    ds = lakeformat.load("/tmp/h9/dest", read_only=True)
    for mode in sys.argv[1:]:
        text_column.text_values = counting if mode == "on" else (lambda *a: None)
        best = 9.0
        n = 0
        for _ in range(2):
            a = time.process_time()
            n = sum(len(b["text"]) for b in dataloader(ds[:300000]).batch(1024).pytorch(num_workers=0, tensors=["text"]))
            best = min(best, time.process_time() - a)
        print(mode, n, round(best, 3), "calls", calls[0])


if __name__ == "__main__":
    main()
