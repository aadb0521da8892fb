#!/usr/bin/python3
"""The Slurm array job shipped with the package (packaging/slurm/quantscope-sharded.sh), on
a single-node Slurm cluster started here (tests/scale/localslurm.py): 4 array tasks, each
`compare --shard I/4` over part of the demo test split, then the dependent merge job. The
merged dump must equal the unsharded run's (tests/cli/testutil.py: assert_same_run). A
failed task is rerun alone (--only I) and the merge submitted again (--merge-only).
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from localslurm import LocalSlurm  # noqa: E402
from testutil import assert_same_run  # noqa: E402

ARGS = None
IMAGES = 16  # of the demo test split: enough for uneven shards, little disk


class SlurmArrayJob(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="qs-scale-")
        self.dir = self.tmp.name
        self.images = os.path.join(self.dir, "images")
        os.makedirs(self.images)
        for name in sorted(os.listdir(os.path.join(ARGS.data, "test")))[:IMAGES]:
            shutil.copy(os.path.join(ARGS.data, "test", name), self.images)
        self.compare = ["--original", os.path.join(ARGS.weights, "demo_yolo_v8.pt"),
                        "--quantized", os.path.join(ARGS.weights, "demo_yolo_v8_int8_fx.pt"),
                        "--images", self.images, "--threads", "1",
                        # as a data-set run would: statistics of every image, activations of the 4 worst
                        "--keep-activations", "4", "--keep", "worst"]

    def tearDown(self):
        self.tmp.cleanup()

    def submit(self, slurm, *options):
        env = dict(slurm.env, QS_CLI=ARGS.cli)
        return subprocess.run([ARGS.script, "--shards", "4", "--workdir", os.path.join(self.dir, "work"),
                               "--out", os.path.join(self.dir, "merged.h5"), "--wait", *options, "--", *self.compare],
                              env=env, capture_output=True, text=True, timeout=900, cwd=self.dir)

    def test_four_tasks_and_a_merge_equal_one_run(self):
        slurm = LocalSlurm()
        why = slurm.missing()
        self.assertIsNone(why, why)  # .ci/run installs munge and slurm-wlm and runs as root
        whole = os.path.join(self.dir, "whole.h5")
        start = time.time()
        r = subprocess.run([ARGS.cli, "compare", *self.compare, "--out", whole, "--quiet"], capture_output=True,
                           text=True, timeout=900)
        single = time.time() - start
        self.assertEqual(r.returncode, 0, r.stderr)
        with slurm:
            start = time.time()
            r = self.submit(slurm)
            sharded = time.time() - start
            self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}\n{slurm.logs()}")
            self.assertIn("array job", r.stdout)
            work = os.path.join(self.dir, "work")
            self.assertEqual(sorted(os.path.basename(p) for p in glob.glob(os.path.join(work, "shard-*.h5"))),
                             [f"shard-{i}.h5" for i in range(4)])
            merged = os.path.join(self.dir, "merged.h5")
            assert_same_run(self, merged, whole)
            print(f"\nunsharded compare {single:.1f} s; 4 array tasks + merge on {slurm.cpus} CPUs {sharded:.1f} s")

            # a shard that failed reruns alone, then the merge again
            os.remove(os.path.join(work, "shard-2.h5"))
            os.remove(merged)
            r = self.submit(slurm, "--merge-only")
            self.assertNotEqual(r.returncode, 0, "the merge must fail with a shard missing")
            with open(os.path.join(work, "merge.log")) as f:
                self.assertIn("shard-2.h5", f.read())
            self.assertFalse(os.path.exists(merged))
            r = self.submit(slurm, "--only", "2")
            self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}\n{slurm.logs()}")
            self.assertIn("(2 of 4 shards)", r.stdout)
            assert_same_run(self, merged, whole)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
