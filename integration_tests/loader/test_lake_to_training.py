"""Lake into the loader into a training loop: write a dataset, train a small model for two
epochs with 2 workers and shuffle, stop mid-epoch, resume from the saved loader state, and
check every sample was trained on exactly once per epoch."""
import numpy as np
import torch

import lakeformat
from loaders import dataloader

N = 256


def test_train_stop_resume(tmp_path):
    path = str(tmp_path / "lake")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, N).astype(np.uint32)
    images = rng.integers(0, 20, (N, 8, 8, 3)).astype(np.uint8)
    images[np.arange(N), labels * 2] = 220  # each class lights its own row: linearly separable
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=16 * 1024)
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c", "d"])
        ds.images.extend(images)
        ds.labels.extend(labels)
    ds = lakeformat.load(path, read_only=True)

    def build():
        return (dataloader(ds).transform({"images": lambda x: (x.astype(np.float32) / 255.0).reshape(-1)})
                .batch(16).shuffle(True, seed=4).pytorch(num_workers=2, return_index=True))

    torch.manual_seed(0)
    model = torch.nn.Linear(8 * 8 * 3, 4)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)

    def train_step(b):
        loss = torch.nn.functional.cross_entropy(model(b["images"]), b["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    loader = build()
    seen = {0: [], 1: []}
    state = None
    for epoch in (0, 1):
        for step, b in enumerate(loader):
            train_step(b)
            seen[epoch].extend(b["index"].tolist())
            if epoch == 1 and step == 5:
                state = loader.state_dict()  # "crash" mid-epoch
                break
    resumed = build()
    resumed.load_state_dict(state)
    for b in resumed:
        train_step(b)  # training goes on where it stopped
        seen[1].extend(b["index"].tolist())
    assert sorted(seen[0]) == list(range(N))
    assert sorted(seen[1]) == list(range(N))
    acc = (model(torch.from_numpy(images.reshape(N, -1).astype(np.float32) / 255.0)).argmax(1).numpy() == labels).mean()
    assert acc > 0.9
