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


METRIC_NAMES = ["sqnr_db", "mse", "max_abs", "mean_abs", "rel_err", "cosine"]


def numpy_metrics(o, q):
    """docs/metrics.md in float64 numpy, from the stored values: [sqnr_db, mse, max_abs,
    mean_abs, rel_err, cosine]."""
    import numpy as np
    o = o.astype(np.float64).ravel()
    q = q.astype(np.float64).ravel()
    e = q - o
    err2, ref2 = np.sum(e * e), np.sum(o * o)
    sqnr = np.inf if err2 == 0 else (10 * np.log10(ref2 / err2) if ref2 > 0 else -np.inf)
    abs_ref = np.sum(np.abs(o))
    rel = 0.0 if np.sum(np.abs(e)) == 0 else (np.sum(np.abs(e)) / abs_ref if abs_ref > 0 else np.inf)
    no, nq = np.sqrt(ref2), np.sqrt(np.sum(q * q))
    cosine = 1.0 if no == 0 and nq == 0 else (0.0 if no == 0 or nq == 0 else np.dot(o, q) / (no * nq))
    return [sqnr, np.mean(e * e), np.max(np.abs(e)), np.mean(np.abs(e)), rel, cosine]


def numpy_histogram(values, low, width, bins, scale=None):
    """docs/dump-format.md#histograms, in numpy: float values to bin (v - low) * (1 / w) in
    float32 arithmetic, clamped to the ends; with a grid (quantized values), the value's
    level round(v / scale) to bin (level - first level) * bins per level; NaN and inf
    skipped."""
    import numpy as np
    v = values.astype(np.float32).ravel()
    v = v[np.isfinite(v)]
    if scale is not None:
        per_level = round(scale / width)
        first = round((low + width / 2) / scale)
        levels = np.rint(v * np.float32(1.0 / scale)).astype(np.int64)
        idx = np.clip((levels - first) * per_level, 0, bins - 1)
    else:
        position = (v - np.float32(low)) * np.float32(1.0 / width)
        idx = np.clip(position, np.float32(0), np.float32(bins - 1)).astype(np.int64)
    return np.bincount(idx, minlength=bins)


def check_recorded_views(test, dump):
    """The per-image metrics and histograms compare wrote into `dump`, against numpy on
    the stored activations."""
    import h5py
    import numpy as np
    with h5py.File(dump, "r") as f:
        n, layers = int(f.attrs["image_count"]), len(f["layers"])
        stored = {m: f["image_metrics"][m][()] for m in METRIC_NAMES}
        for m in METRIC_NAMES:
            test.assertEqual(stored[m].shape, (n, layers), m)
        for k in range(layers):
            g = f["layers"]["%04d" % k]
            o, q = g["original"][()], g["quantized"][()]
            for i in range(n):
                for m, want in zip(METRIC_NAMES, numpy_metrics(o[i], q[i])):
                    np.testing.assert_allclose(stored[m][i, k], want, rtol=1e-9, atol=1e-12,
                                               err_msg="%s of %s on image %d" % (m, g.attrs["name"], i))
            h = g["histogram"]
            scale = h.attrs["scale"] if "scale" in h.attrs else None
            test.assertEqual(scale is not None, "scale" in g["quantized"].attrs, g.attrs["name"])
            for side, values, grid in (("original", o, None), ("quantized", q, scale)):
                counts = h[side][()]
                np.testing.assert_array_equal(
                    counts, numpy_histogram(values, h.attrs["low"], h.attrs["bin_width"], len(counts), grid),
                    err_msg="%s %s histogram" % (g.attrs["name"], side))


def assert_same_run(test, merged, whole):
    """A merged dump against the unsharded run's: every dataset image by image, metrics
    from sums to 1e-9 relative."""
    import h5py
    import numpy as np
    with h5py.File(merged) as m, h5py.File(whole) as w:
        test.assertEqual(int(m.attrs["image_count"]), int(w.attrs["image_count"]))
        test.assertEqual(int(m.attrs["complete"]), 1)
        n = int(w.attrs["image_count"])
        for i in range(n):
            test.assertEqual(m["inputs"]["%04d" % i].attrs["source"], w["inputs"]["%04d" % i].attrs["source"])
            # with --keep-activations only the kept images' pixels are stored
            test.assertEqual("image" in m["inputs"]["%04d" % i], "image" in w["inputs"]["%04d" % i], i)
            if "image" in w["inputs"]["%04d" % i]:
                np.testing.assert_array_equal(m["inputs"]["%04d" % i]["image"][()], w["inputs"]["%04d" % i]["image"][()])
            for side in ("original", "quantized"):
                np.testing.assert_array_equal(m["outputs"]["%04d" % i][side][()], w["outputs"]["%04d" % i][side][()])
        test.assertEqual(sorted(m["layers"]), sorted(w["layers"]))
        for attr in ("kept_images", "kept_selection", "keep_activations"):  # --keep-activations runs
            test.assertEqual(m.attrs.get(attr), w.attrs.get(attr), attr)
        perm = slice(None)  # merged row of each of the run's rows
        if "kept_rows" in w:  # the same images kept, their rows in any order
            rows_m, rows_w = m["kept_rows"][()].tolist(), w["kept_rows"][()].tolist()
            test.assertEqual(sorted(rows_m), sorted(rows_w))
            perm = [rows_m.index(image) for image in rows_w]
        for k in w["layers"]:
            a, b = m["layers"][k], w["layers"][k]
            test.assertEqual(a.attrs["name"], b.attrs["name"])
            for name in ("original", "quantized", "abs_diff", "rel_diff", "mean_original", "mean_quantized"):
                if name in b:
                    np.testing.assert_array_equal(a[name][()][perm], b[name][()], err_msg=f"{k} {name}")
                    test.assertEqual(dict(a[name].attrs), dict(b[name].attrs))
            for metric in METRIC_NAMES:  # from summed statistics, not averaged
                np.testing.assert_allclose(a.attrs[metric], b.attrs[metric], rtol=1e-9, err_msg=f"{k} {metric}")
                np.testing.assert_allclose(a["channels"][metric][()], b["channels"][metric][()], rtol=1e-6)
            np.testing.assert_allclose(a["sums"][()], b["sums"][()], rtol=1e-9)
            np.testing.assert_allclose(a["channels/sums"][()], b["channels/sums"][()], rtol=1e-9)
            for side in ("original", "quantized"):  # binned anew over the union of ranges
                np.testing.assert_array_equal(a["histogram"][side][()], b["histogram"][side][()])
            test.assertEqual(a["histogram"].attrs["low"], b["histogram"].attrs["low"])
        for metric in METRIC_NAMES:
            np.testing.assert_allclose(m["image_metrics"][metric][()], w["image_metrics"][metric][()], rtol=1e-12)

