"""Helpers for tests that drive a running child process (no fixed sleeps: a test waits for
what the child says, with a generous timeout only as a guard against a hang)."""
import threading


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
