"""The runner the Python tests in tests/loader use when run directly (CTest runs them as scripts;
pytest finds the same test_* functions on its own)."""
import sys
import traceback


class Skip(Exception):
    """Raised by a test that cannot run here (no GPU, ...): reported with its reason, not passed."""


def skip(reason):
    """Skips the running test: pytest's skip under pytest, else Skip for run_tests."""
    if "pytest" in sys.modules:
        import pytest

        pytest.skip(reason)
    raise Skip(reason)


def run_tests(namespace, verbose=False):
    """Runs every test_* function of `namespace` (a module's globals()) in name order, prints PASS,
    SKIP (with the reason) or FAIL (with the traceback when verbose) for each and a closing count;
    returns the exit status: 1 when any failed."""
    passed = failed = skipped = 0
    for name, fn in sorted(namespace.items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                passed += 1
                print("PASS", name)
            except Skip as e:
                skipped += 1
                print("SKIP %s: %s" % (name, e))
            except Exception as e:  # report every failure, then fail
                failed += 1
                print("FAIL", name, type(e).__name__, e)
                if verbose:
                    traceback.print_exc()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0
