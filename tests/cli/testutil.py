"""Helpers shared by the end-to-end tests: seeded test images, and driving a running child
process (no fixed sleeps: a test waits for what the child says, with a generous timeout
only as a guard against a hang)."""
import os
import threading

import numpy as np
import torch
from PIL import Image


def wait_for_line(p, predicate, timeout=300):
    """Reads the child's stderr until a line satisfies predicate and returns that line;
    None when the output ends (or the guard timeout passes) first."""
    found = []

    def read():
        for line in p.stderr:
            if predicate(line):
                found.append(line)
                return
    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    return found[0] if found else None


def write_images(directory, count, width, height, seed):
    """Smooth random RGB images (fixed seed), so that convolutions see structure."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.RandomState(seed)
    paths = []
    for i in range(count):
        small = rng.rand(max(2, height // 4), max(2, width // 4), 3)
        img = Image.fromarray((small * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
        noise = rng.randint(-20, 21, size=(height, width, 3))
        arr = np.clip(np.asarray(img).astype(np.int32) + noise, 0, 255).astype(np.uint8)
        path = os.path.join(directory, "img_%02d.png" % i)
        Image.fromarray(arr, "RGB").save(path)
        paths.append(path)
    return paths


def load_batch(paths):
    """The images as our loader feeds a batch-tensor model: RGB, [0,1], NCHW."""
    arrs = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in paths]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()
