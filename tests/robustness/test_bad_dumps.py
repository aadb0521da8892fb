#!/usr/bin/env python3
"""Every reader of a dump, run on a corpus of damaged dumps (make_bad_dumps.py): the
CLI's inspect (text and JSON) and export (maps, hexbin, detections, which render through
the GUI program), and the GUI's --screenshot, which opens the window on the dump.

Each run must end by itself with exit code 0 or 1: no signal, no hang (60 s), memory
bounded (RLIMIT_DATA 3 GiB), nothing but our own one-line errors on stderr. A crafted
case (an inconsistency a hostile user found) must fail, with its file named and the
words of manifest.json in the message, in every reader that reads what it damaged.

usage: test_bad_dumps.py --cli CLI --gui GUI (--corpus DIR | --good GOOD.h5) [--regressions DIR]
  --good writes the corpus from GOOD.h5 first (make_bad_dumps.py, fixed seed)
  --regressions: dumps the fuzzer found (each made a reader crash or hang once); they
  go through inspect and the GUI and must be refused with exit 1 naming the file
"""
import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor

ARGS = None
TIMEOUT = 60
MEMORY = 3 << 30
# lines a run may print on stderr besides our own "quantscope...: " ones (Qt on the
# offscreen platform)
NOISE = ("QStandardPaths:", "This plugin does not support")


def limit_memory():
    if not ARGS.sanitized:  # AddressSanitizer's shadow memory is a data mapping of terabytes
        resource.setrlimit(resource.RLIMIT_DATA, (MEMORY, MEMORY))


def run(argv):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                           preexec_fn=limit_memory, errors="replace")
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "hang", "", ""


def readers(dump, out):
    cli, gui = ARGS.cli, ARGS.gui
    return {
        "inspect": [cli, "inspect", dump],
        "inspect-json": [cli, "inspect", dump, "--json"],
        "export-abs": [cli, "export", dump, "--all", "--kind", "abs", "--format", "png", "--out", out],
        "export-original": [cli, "export", dump, "--all", "--kind", "original", "--format", "png", "--out", out],
        "export-hexbin": [cli, "export", dump, "--kind", "hexbin", "--format", "png", "--out", out],
        "export-detections": [cli, "export", dump, "--kind", "detections", "--format", "png", "--out", out],
        "screenshot": [gui, "--screenshot", os.path.join(out, "shot.png"), dump],
    }


def run_all(dump):
    with tempfile.TemporaryDirectory() as out:
        return {name: run(argv) for name, argv in readers(dump, out).items()}


class BadDumps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ARGS.corpus, "manifest.json")) as fh:
            cls.manifest = json.load(fh)
        files = [c["file"] for c in cls.manifest["crafted"]] + cls.manifest["mutated"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = pool.map(lambda f: run_all(os.path.join(ARGS.corpus, f)), files)
        cls.results = dict(zip(files, results))
        counts = {"runs": 0, "exit 0": 0, "exit 1": 0, "other": 0}
        for per_file in cls.results.values():
            for code, _, _ in per_file.values():
                counts["runs"] += 1
                counts["exit %s" % code if code in (0, 1) else "other"] += 1
        print("\n%d dumps (%d crafted, %d mutated), %s" % (
            len(files), len(cls.manifest["crafted"]), len(cls.manifest["mutated"]), counts))

    def test_every_reader_ends_in_order_on_every_dump(self):
        bad = []
        for f, per_file in self.results.items():
            for reader, (code, _, err) in per_file.items():
                if code not in (0, 1):
                    what = "hang" if code == "hang" else "signal %d" % -code if code < 0 else "exit %d" % code
                    bad.append("%s %s: %s %s" % (reader, f, what, err.strip()[-300:]))
                    continue
                foreign = [l for l in err.splitlines()
                           if l.strip() and not l.startswith(("quantscope", "wrote")) and not l.startswith(NOISE)]
                if foreign:
                    bad.append("%s %s: stderr not ours: %s" % (reader, f, foreign[:3]))
                if code == 1 and not err.strip():
                    bad.append("%s %s: exit 1 without a message" % (reader, f))
        self.assertEqual(bad, [], "\n".join(bad))

    def test_crafted_damage_is_named_by_every_reader_that_reads_it(self):
        # what each reader reads: structural damage is refused by all (they all open the
        # dump through the validating reader); a damaged map only by those that draw it.
        # No reader here reads raw activations (figures use the stored maps): the damaged
        # activation chunk is read, and refused, in test_dumpsections.
        reads = {"map": ["export-abs"], "activation": []}
        bad = []
        for case in self.manifest["crafted"]:
            f = case["file"]
            names = reads.get(case.get("reads"), list(self.results[f]))
            for reader in names:
                code, _, err = self.results[f][reader]
                if code != 1:
                    bad.append("%s %s: exit %s, expected 1" % (reader, f, code))
                    continue
                for word in [f] + case["expect"]:
                    if word not in err:
                        bad.append("%s %s: %r not in %r" % (reader, f, word, err.strip()))
        self.assertEqual(bad, [], "\n".join(bad))

    def test_fuzzer_findings_are_refused(self):
        if not ARGS.regressions:
            self.skipTest("no --regressions")
        files = sorted(f for f in os.listdir(ARGS.regressions) if f.endswith(".h5"))
        self.assertTrue(files)
        bad = []
        with tempfile.TemporaryDirectory() as out:
            for f in files:
                dump = os.path.join(ARGS.regressions, f)
                for name in ("inspect", "screenshot"):
                    code, _, err = run(readers(dump, out)[name])
                    if code != 1 or f not in err:
                        bad.append("%s %s: exit %s: %s" % (name, f, code, err.strip()[-300:]))
        self.assertEqual(bad, [], "\n".join(bad))

    def test_gui_help_and_version_need_no_display(self):
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
        for flag, word in (("--help", "--screenshot"), ("--version", "QuantScope")):
            p = subprocess.run([ARGS.gui, flag], capture_output=True, text=True, timeout=TIMEOUT, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(word, p.stdout)

    def test_a_damaged_map_is_never_drawn(self):
        # the corrupted chunk's layer (0000) must not be exported as a figure: it would
        # show values the model never produced
        with tempfile.TemporaryDirectory() as out:
            code, _, err = run(readers(os.path.join(ARGS.corpus, "corrupt_map.h5"), out)["export-abs"])
            self.assertEqual(code, 1)
            self.assertIn("layer 0000", err)
            self.assertIn("checksum mismatch", err)
            self.assertEqual([f for f in os.listdir(out) if f.startswith("0000_")], [])


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--cli", required=True)
    p.add_argument("--gui", required=True)
    p.add_argument("--corpus")
    p.add_argument("--good")
    p.add_argument("--regressions")
    p.add_argument("--sanitized", action="store_true",
                   help="binaries built with AddressSanitizer (preset asan): no data limit, longer time limit")
    ARGS, rest = p.parse_known_args()
    if ARGS.sanitized:
        TIMEOUT = 300
    with tempfile.TemporaryDirectory() as corpus:
        if ARGS.good:
            ARGS.corpus = os.path.join(corpus, "corpus")
            subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_bad_dumps.py"),
                            ARGS.good, ARGS.corpus, "--mutations", "24", "--seed", "1"], check=True)
        if not ARGS.corpus:
            p.error("give --corpus or --good")
        unittest.main(argv=[sys.argv[0]] + rest)
