"""The runner the Python tests in tests/loader use when run directly (CTest runs them as scripts;
pytest finds the same test_* functions on its own)."""
import traceback


def run_tests(namespace, verbose=False):
    """Runs every test_* function of `namespace` (a module's globals()) in name order, prints PASS
    or FAIL for each (with the traceback when verbose) and a closing count; returns the exit
    status: 1 when any failed."""
    passed = failed = 0
    for name, fn in sorted(namespace.items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                passed += 1
                print("PASS", name)
            except Exception as e:  # report every failure, then fail
                failed += 1
                print("FAIL", name, type(e).__name__, e)
                if verbose:
                    traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
