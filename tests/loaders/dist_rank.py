"""One rank of the distributed loader test (run as a script by test_distributed.py)."""
import json
import sys

import torch.distributed as dist

import lakeformat
from loaders import dataloader


def main(path: str, out: str) -> None:
    dist.init_process_group("gloo")
    ds = lakeformat.load(path, read_only=True)
    result = {}
    for drop_last in (False, True):
        loader = (dataloader(ds).batch(8, drop_last=drop_last).shuffle(True)  # no seed: rank 0's is broadcast
                  .pytorch(num_workers=2, tensors=["labels"], distributed=True, return_index=True))
        epochs = []
        for epoch in (0, 1, 0):
            loader.set_epoch(epoch)
            epochs.append([int(i) for b in loader for i in b["index"]])
        result[str(drop_last)] = {"epochs": epochs, "batches": len(loader)}
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, result)
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(gathered, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
