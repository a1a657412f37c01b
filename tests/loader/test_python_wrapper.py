#!/usr/bin/env python3
"""kernels_loader's Python wrapper logic over a stub library: no torch, no GPU, no libkernels_loader.

Regression tests for issue 12, defect 14: device_source() raised UnicodeDecodeError for a
non-UTF-8 cache path in the reason (or a multi-byte character cut by the fixed-size buffer),
device_source(2**40) asked about device 0 (ctypes kept the low 32 bits), and a NUL in a path
given to init() silently cut the path short. Runs under pytest or directly.
"""
import ctypes
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "loader", "python"))
import kernels_loader  # noqa: E402
from run_tests import run_tests  # noqa: E402  (tests/loader, this file's directory)


class StubLibrary:
    """Stands in for the C library: records calls, fills the out-structs it is handed."""

    def __init__(self, reason=b"", repo_id=b"org/name"):
        self.reason, self.repo_id = reason, repo_id
        self.devices, self.options = [], []

    def kernels_loader_device_source(self, device, ver, info_ref):
        self.devices.append(device)
        info = ctypes.cast(info_ref, ctypes.POINTER(kernels_loader._SourceInfo)).contents
        assert info.struct_size == ctypes.sizeof(kernels_loader._SourceInfo)  # initialised first
        info.source = 2
        info.reason = self.reason
        info.repo_id = self.repo_id
        return kernels_loader.KL_OK

    def kernels_loader_source_info_init(self, info_ref):
        info = ctypes.cast(info_ref, ctypes.POINTER(kernels_loader._SourceInfo)).contents
        info.struct_size = ctypes.sizeof(kernels_loader._SourceInfo)

    def kernels_loader_init(self, options_ref):
        o = ctypes.cast(options_ref, ctypes.POINTER(kernels_loader._Options)).contents
        self.options.append((o.lockfile, o.cache_dir))
        return kernels_loader.KL_OK

    def kernels_loader_last_error(self):
        return b"stub"


def with_stub(stub):
    kernels_loader._lib = stub
    return stub


def test_non_utf8_reason_does_not_raise():
    # A Latin-1 cache path, then a 3-byte character cut after its first byte by the buffer's end.
    stub = with_stub(StubLibrary(reason=b"/srv/cach\xe9/kernels.lock: not_downloaded \xe2\x82"))
    src = kernels_loader.device_source(0, 3)
    assert src["source"] == "builtin"
    assert src["reason"].startswith("/srv/cach")
    assert "\ufffd" in src["reason"]
    assert stub.devices == [0]


def test_device_index_out_of_int_range_is_refused():
    stub = with_stub(StubLibrary())
    for bad in (2**40, 2**31, -2**31 - 1):
        try:
            kernels_loader.device_source(bad, 3)
        except ValueError as e:
            assert "device" in str(e)
        else:
            raise AssertionError("device_source(%d) was accepted" % bad)
    try:
        kernels_loader.device_source(0, 2**33 + 3)
    except ValueError as e:
        assert "ver" in str(e)
    else:
        raise AssertionError("ver=2**33+3 was accepted")
    assert stub.devices == []  # nothing reached the library
    kernels_loader.device_source(2**31 - 1, 3)
    assert stub.devices == [2**31 - 1]


def test_nul_in_a_path_is_refused():
    stub = with_stub(StubLibrary())
    for kwargs in ({"cache_dir": "/tmp/cache\0/evil"}, {"lockfile": b"/tmp/k.lock\0x"}):
        try:
            kernels_loader.init(**kwargs)
        except ValueError as e:
            assert "NUL" in str(e)
        else:
            raise AssertionError("init(%r) was accepted" % kwargs)
    assert stub.options == []
    kernels_loader.init(cache_dir="/tmp/caché")
    assert stub.options == [(None, "/tmp/caché".encode())]


def test_without_torch_the_package_imports_and_registers_no_ops():
    try:
        import torch  # noqa: F401
    except ImportError:
        assert kernels_loader._ops is None
        assert kernels_loader._ops_error == "torch is not installed"
    else:  # tests_loader:torch_ops covers the ops
        assert kernels_loader._ops is not None, kernels_loader._ops_error


def test_a_torch_that_fails_to_import_does_not_break_the_package():
    # A torch whose import raises OSError (as a CUDA wheel without its nvidia libraries does).
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "torch"))
        with open(os.path.join(d, "torch", "__init__.py"), "w") as f:
            f.write('raise OSError("libcudnn.so.9: cannot open shared object file")\n')
        package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "loader", "python")
        r = subprocess.run([sys.executable, "-c", "import kernels_loader as k; print(k._ops, k._ops_error)"],
                           env=dict(os.environ, PYTHONPATH=d + os.pathsep + package),
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None importing torch failed: OSError: libcudnn.so.9: cannot open shared object file", r.stdout
    assert "no custom ops registered" in r.stderr, r.stderr


def main():
    try:
        return run_tests(globals())
    finally:
        kernels_loader._lib = None


if __name__ == "__main__":
    sys.exit(main())
