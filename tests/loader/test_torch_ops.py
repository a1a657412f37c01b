#!/usr/bin/env python3
"""kernels_loader's torch.library custom ops (issue 14): registration, fake-tensor shapes, opcheck,
torch.compile(fullgraph=True) without graph breaks; then, on a GPU only, the real launch compiled
and under CUDA-graph capture against eager calls.

The CPU part needs torch (CPU-only is enough) and no libkernels_loader: the real implementation
runs over a stub library that records the args struct it is handed, so the tests see what the ops
would launch. Without torch here, the test re-runs itself with $KERNELS_TORCH_VENV/bin/python
(scripts/setup-torch-venv.sh makes one), else prints "SKIPPED: <reason>". The GPU part reports
"SKIP ...: [gpu] no CUDA device" without one (the CPU part still counts). Runs under pytest or
directly.
"""
import ctypes
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "loader", "python"))


def _torch_or_reexec():
    try:
        import torch  # noqa: F401
        return None
    except ImportError:
        pass
    venv = os.environ.get("KERNELS_TORCH_VENV", "")
    py = os.path.join(venv, "bin", "python") if venv else ""
    if py and os.path.exists(py) and os.environ.get("KERNELS_TORCH_REEXEC") != "1":
        os.environ["KERNELS_TORCH_REEXEC"] = "1"
        os.execv(py, [py] + sys.argv)
    return ("torch is not installed (scripts/setup-torch-venv.sh %s installs a CPU-only one)"
            % (venv or "BUILD_DIR/torch-venv"))


SKIP = _torch_or_reexec() if __name__ == "__main__" else None
if __name__ == "__main__" and SKIP:
    print("SKIPPED:", SKIP)
    sys.exit(0)
if "pytest" in sys.modules:
    import pytest

    torch = pytest.importorskip("torch")
import torch  # noqa: E402
import kernels_loader as kl  # noqa: E402
from run_tests import run_tests, skip  # noqa: E402  (tests/loader, this file's directory)

NS = torch.ops.kernels_loader
BF16 = torch.bfloat16


class StubLibrary:
    """Stands in for libkernels_loader: initialises the args structs, answers a zero workspace,
    records a copy of every struct a launch is handed, and fails when told to."""

    def __init__(self):
        self.calls = []
        self.status = kl.KL_OK

    def _init(self, struct, ref):
        s = ctypes.cast(ref, ctypes.POINTER(struct)).contents
        s.struct_size = ctypes.sizeof(struct)

    def kernels_loader_varlen_args_init(self, ref):
        self._init(kl._VarlenArgs, ref)

    def kernels_loader_kvcache_args_init(self, ref):
        self._init(kl._KvcacheArgs, ref)

    def _workspace(self, ref, stream, nbytes):
        ctypes.cast(nbytes, ctypes.POINTER(ctypes.c_size_t)).contents.value = 0
        return kl.KL_OK

    kernels_loader_varlen_workspace_size = _workspace
    kernels_loader_kvcache_workspace_size = _workspace

    def _record(self, name, struct, ref):
        args = struct.from_buffer_copy(ctypes.cast(ref, ctypes.POINTER(struct)).contents)
        self.calls.append((name, args))
        if self.status == kl.KL_OK:
            # Deterministic outputs (zeros), so opcheck can compare eager with traced runs.
            for t in (args.out, args.softmax_lse):
                if t.data:
                    n = 1
                    for i in range(t.ndim):
                        n *= t.shape[i]
                    ctypes.memset(t.data, 0, n * {kl._BF16: 2, kl._F16: 2, kl._F32: 4}[t.dtype])
        return self.status

    def kernels_loader_flash_attn_varlen_func(self, ref, stream):
        return self._record("varlen", kl._VarlenArgs, ref)

    def kernels_loader_flash_attn_with_kvcache(self, ref, stream):
        return self._record("kvcache", kl._KvcacheArgs, ref)

    def kernels_loader_last_error(self):
        return b"stub refused: q must be on a CUDA device [device]"


def with_stub():
    stub = StubLibrary()
    kl._lib = stub
    kl._templates.clear()  # the structs' defaults came from whichever library was current
    return stub


# Shapes as FA3 defines them (flash_attn_interface): varlen out (total_q, h, dv), lse (h, total_q);
# kvcache out (b, s_q, h, dv), lse (b, h, s_q); kvcache with cu_seqlens_q lse (h, total_q).
TOTAL_Q, TOTAL_K, H, H_K, D, DV = 10, 12, 8, 2, 128, 64


def varlen_inputs(device="cpu", dv=DV):
    q = torch.randn(TOTAL_Q, H, D, dtype=BF16, device=device)
    k = torch.randn(TOTAL_K, H_K, D, dtype=BF16, device=device)
    v = torch.randn(TOTAL_K, H_K, dv, dtype=BF16, device=device)
    cu_q = torch.tensor([0, 4, TOTAL_Q], dtype=torch.int32, device=device)
    cu_k = torch.tensor([0, 5, TOTAL_K], dtype=torch.int32, device=device)
    return q, k, v, cu_q, cu_k


def kvcache_inputs(device="cpu", b=2, s_q=3, num_pages=16, page_size=16, dv=DV):
    q = torch.randn(b, s_q, H, D, dtype=BF16, device=device)
    k_cache = torch.randn(num_pages, page_size, H_K, D, dtype=BF16, device=device)
    v_cache = torch.randn(num_pages, page_size, H_K, dv, dtype=BF16, device=device)
    lens = torch.tensor([20, 33], dtype=torch.int32, device=device)
    table = torch.arange(b * 4, dtype=torch.int32, device=device).view(b, 4)
    return q, k_cache, v_cache, lens, table


def fake_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode()


def check(t, shape, dtype):
    assert tuple(t.shape) == shape, (tuple(t.shape), shape)
    assert t.dtype == dtype, (t.dtype, dtype)


# --- registration ---------------------------------------------------------------------------

def test_ops_are_registered():
    assert kl._ops is not None, kl._ops_error
    for name in ("flash_attn_varlen_func", "flash_attn_with_kvcache"):
        op = getattr(NS, name).default
        schema = str(op._schema)
        assert schema.startswith("kernels_loader::%s(Tensor q" % name), schema
        assert schema.endswith("-> (Tensor, Tensor)"), schema
        assert "int window_left=-1, int window_right=-1" in schema, schema
        out_schema = str(getattr(NS, name + "_out").default._schema)
        assert "int ver=3, *, Tensor(a!) out) -> Tensor" in out_schema, out_schema
        # A fake implementation is registered (torch.compile needs it), and a CUDA kernel.
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CUDA")
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "Meta")


def test_op_arguments_follow_the_public_signature():
    # Every argument the op takes is a parameter of the public function (window_size split in two).
    import inspect

    for name in ("flash_attn_varlen_func", "flash_attn_with_kvcache"):
        public = set(inspect.signature(getattr(kl, name)).parameters) | {"window_left", "window_right"}
        op_args = [a.name for a in getattr(NS, name).default._schema.arguments]
        assert set(op_args) <= public, set(op_args) - public


# --- fake tensors: shapes and dtypes ----------------------------------------------------------

def test_fake_varlen_shapes_with_and_without_lse():
    with fake_mode():
        q, k, v, cu_q, cu_k = varlen_inputs()
        out, lse = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, causal=True, return_softmax_lse=True)
        check(out, (TOTAL_Q, H, DV), BF16)
        check(lse, (H, TOTAL_Q), torch.float32)
        only = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7)
        assert isinstance(only, torch.Tensor)
        check(only, (TOTAL_Q, H, DV), BF16)
        out, lse = NS.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7)
        check(lse, (0,), torch.float32)  # not asked for: empty
        # FA3's empty batch: total_q = 0 gives empty out and lse.
        out, lse = kl.flash_attn_varlen_func(q[:0], k, v, torch.zeros(3, dtype=torch.int32), cu_k, 0, 7,
                                             return_softmax_lse=True)
        check(out, (0, H, DV), BF16)
        check(lse, (H, 0), torch.float32)


def test_fake_kvcache_shapes_with_and_without_lse():
    with fake_mode():
        q, k_cache, v_cache, lens, table = kvcache_inputs()
        out, lse = kl.flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=lens, page_table=table,
                                              causal=True, return_softmax_lse=True)
        check(out, (2, 3, H, DV), BF16)
        check(lse, (2, H, 3), torch.float32)
        only = kl.flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=33, page_table=table)
        check(only, (2, 3, H, DV), BF16)
        # varlen q with cu_seqlens_q: out (total_q, h, dv), lse (h, total_q).
        qv = q.reshape(6, H, D)
        cu = torch.tensor([0, 3, 6], dtype=torch.int32)
        out, lse = kl.flash_attn_with_kvcache(qv, k_cache, v_cache, cache_seqlens=lens, page_table=table,
                                              cu_seqlens_q=cu, max_seqlen_q=3, return_softmax_lse=True)
        check(out, (6, H, DV), BF16)
        check(lse, (H, 6), torch.float32)


def test_fake_out_variant_returns_the_given_out():
    with fake_mode():
        q, k, v, cu_q, cu_k = varlen_inputs()
        given = torch.empty(TOTAL_Q, H, DV, dtype=BF16)
        out, lse = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, out=given, return_softmax_lse=True)
        assert out is given
        check(lse, (H, TOTAL_Q), torch.float32)


# --- opcheck: schema, fake vs real, autograd registration, AOT dispatch ---------------------------

def test_opcheck_varlen_and_kvcache():
    stub = with_stub()
    q, k, v, cu_q, cu_k = varlen_inputs()
    kq, k_cache, v_cache, lens, table = kvcache_inputs()
    cases = [
        (NS.flash_attn_varlen_func.default, (q, k, v, cu_q, cu_k, 6, 7), {"return_softmax_lse": True}),
        (NS.flash_attn_varlen_func.default, (q, k, v, cu_q, cu_k, 6, 7), {"causal": True}),
        (NS.flash_attn_with_kvcache.default, (kq, k_cache, v_cache),
         {"cache_seqlens": lens, "page_table": table, "return_softmax_lse": True}),
        (NS.flash_attn_with_kvcache.default, (kq, k_cache, v_cache),
         {"cache_seqlens": lens, "page_table": table}),
        (NS.flash_attn_varlen_func_out.default,
         (q, k, v, cu_q, cu_k, 6, 7), {"return_softmax_lse": True, "out": torch.empty(TOTAL_Q, H, DV, dtype=BF16)}),
    ]
    for op, args, kwargs in cases:
        result = torch.library.opcheck(op, args, kwargs)
        bad = {k: v for k, v in result.items() if v != "SUCCESS"}
        assert not bad, (op, bad)
    assert stub.calls, "opcheck never ran the real implementation"


# --- the real implementation, over the stub: what reaches the library ----------------------------

def test_a_call_hands_the_library_its_arguments():
    stub = with_stub()
    q, k, v, cu_q, cu_k = varlen_inputs()
    out, lse = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, causal=True, window_size=(32, 0),
                                         softcap=5.0, return_softmax_lse=True)
    (name, a), = stub.calls
    assert name == "varlen"
    assert a.q.data == q.data_ptr() and a.k.data == k.data_ptr() and a.v.data == v.data_ptr()
    assert a.out.data == out.data_ptr() and tuple(a.out.shape[:3]) == (TOTAL_Q, H, DV)
    assert a.softmax_lse.data == lse.data_ptr() and tuple(a.softmax_lse.shape[:2]) == (H, TOTAL_Q)
    assert (a.max_seqlen_q, a.max_seqlen_k, a.causal) == (6, 7, 1)
    assert (a.window_left, a.window_right, a.softcap, a.ver) == (32, 0, 5.0, 3)
    assert a.pack_gqa == -1 and a.softmax_scale == 0.0

    stub.calls.clear()
    out = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7)
    (_, a), = stub.calls
    assert a.softmax_lse.data is None  # not asked for: the library gets none
    assert a.out.data == out.data_ptr()

    stub.calls.clear()
    given = torch.empty(TOTAL_Q, H, DV, dtype=BF16)
    got = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, out=given)
    (_, a), = stub.calls
    assert got is given and a.out.data == given.data_ptr()

    stub.calls.clear()
    kq, k_cache, v_cache, lens, table = kvcache_inputs()
    out, lse = kl.flash_attn_with_kvcache(kq, k_cache, v_cache, cache_seqlens=33, page_table=table,
                                          pack_gqa=True, return_softmax_lse=True)
    (name, a), = stub.calls
    assert name == "kvcache"
    assert a.page_table.data == table.data_ptr() and a.cache_seqlens.ndim == 1
    assert tuple(a.cache_seqlens.shape[:1]) == (2,)  # the int became one length per batch row
    assert a.pack_gqa == 1 and a.num_splits == 0
    assert tuple(a.softmax_lse.shape[:3]) == (2, H, 3)


def _fields(args):
    """An args struct as comparable values, out/softmax_lse pointers left out (fresh per call)."""
    def value(v):
        if isinstance(v, kl._Tensor):
            return (v.data, v.dtype, v.ndim, tuple(v.shape), tuple(v.stride), v.device)
        return v
    return {name: value(getattr(args, name)) for name, _t in type(args)._fields_
            if name not in ("out", "softmax_lse")}


def test_the_eager_path_and_the_op_hand_the_library_the_same_call():
    # Plain tensors outside torch.compile skip the dispatcher (kernels_loader._eager); what the
    # library receives must not depend on that.
    stub = with_stub()
    q, k, v, cu_q, cu_k = varlen_inputs()
    kw = dict(causal=True, window_size=(16, 4), softcap=2.5, softmax_scale=0.125, pack_gqa=False,
              num_splits=1, return_softmax_lse=True)
    kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, **kw)
    eager = kl._eager
    kl._eager = lambda torch, q: False
    try:
        kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, **kw)
        kq, k_cache, v_cache, lens, table = kvcache_inputs()
        kl.flash_attn_with_kvcache(kq, k_cache, v_cache, cache_seqlens=lens, page_table=table, causal=True)
        kl._eager = eager
        kl.flash_attn_with_kvcache(kq, k_cache, v_cache, cache_seqlens=lens, page_table=table, causal=True)
    finally:
        kl._eager = eager
    (n1, direct), (n2, via_op), (n3, kv_op), (n4, kv_direct) = stub.calls
    assert (n1, n2, n3, n4) == ("varlen", "varlen", "kvcache", "kvcache")
    assert _fields(direct) == _fields(via_op)
    assert _fields(kv_direct) == _fields(kv_op)
    assert (direct.window_left, direct.window_right, direct.pack_gqa) == (16, 4, 0)


def test_a_refusal_from_the_library_surfaces_through_the_op():
    stub = with_stub()
    stub.status = kl.KL_ERR_INVALID_ARGUMENT
    q, k, v, cu_q, cu_k = varlen_inputs()
    for call in (lambda: kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7),  # eager path
                 lambda: NS.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7),  # the op
                 lambda: NS.flash_attn_varlen_func_out(q, k, v, cu_q, cu_k, 6, 7, out=torch.empty(1))):
        try:
            call()
        except kl.KernelsLoaderError as e:
            assert e.status == kl.KL_ERR_INVALID_ARGUMENT and "stub refused" in str(e)
        else:
            raise AssertionError("the library's refusal was lost")
    assert len(stub.calls) == 3


def test_unsupported_arguments_are_refused_before_the_op():
    stub = with_stub()
    q, k, v, cu_q, cu_k = varlen_inputs()
    try:
        kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, only_qv=True)
    except kl.KernelsLoaderError as e:
        assert "only_qv" in str(e)
    else:
        raise AssertionError("only_qv=True was accepted")
    assert stub.calls == []


# --- torch.compile(fullgraph=True) -----------------------------------------------------------------

class RecordingBackend:
    """A torch.compile backend that keeps the FX graphs Dynamo hands it, then runs them (aot_eager:
    AOTAutograd's functionalization, which the *_out ops' mutation goes through)."""

    def __init__(self):
        self.graphs = []

    def __call__(self, gm, example_inputs):
        from torch._dynamo.backends.debugging import aot_eager

        self.graphs.append(gm)
        return aot_eager(gm, example_inputs)

    def targets(self, graphs=None):
        # Dynamo names an op by its packet (kernels_loader.name), AOT by its overload (.default).
        return [str(n.target).replace(".default", "") for g in (graphs or self.graphs)
                for n in g.graph.nodes if n.op == "call_function"]

    def graphs_calling(self, op):
        return [g for g in self.graphs if "kernels_loader." + op in self.targets([g])]


def test_compile_fullgraph_traces_the_ops_without_graph_breaks():
    torch._dynamo.reset()
    backend = RecordingBackend()

    def attention(q, k, v, cu_q, cu_k, kq, k_cache, v_cache, lens, table, given):
        out, lse = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 6, 7, causal=True,
                                             return_softmax_lse=True)
        dec = kl.flash_attn_with_kvcache(kq, k_cache, v_cache, cache_seqlens=lens, page_table=table)
        dec2, lse2 = kl.flash_attn_with_kvcache(kq, k_cache, v_cache, cache_seqlens=lens,
                                                page_table=table, out=given, return_softmax_lse=True)
        return out * 2, lse.sum(), dec + 1, dec2, lse2

    compiled = torch.compile(attention, backend=backend, fullgraph=True)
    inputs = varlen_inputs("meta") + kvcache_inputs("meta") + (
        torch.empty(2, 3, H, DV, dtype=BF16, device="meta"),)
    out2, lse_sum, dec, dec2, lse2 = compiled(*inputs)  # fullgraph: a graph break would raise
    check(out2, (TOTAL_Q, H, DV), BF16)
    check(lse_sum, (), torch.float32)
    check(dec, (2, 3, H, DV), BF16)
    check(dec2, (2, 3, H, DV), BF16)
    check(lse2, (2, H, 3), torch.float32)
    graphs = backend.graphs_calling("flash_attn_varlen_func")
    assert len(graphs) == 1, len(graphs)
    targets = backend.targets(graphs)
    for op in ("flash_attn_varlen_func", "flash_attn_with_kvcache", "flash_attn_with_kvcache_out"):
        assert targets.count("kernels_loader." + op) == 1, (op, targets)


def test_compile_with_dynamic_shapes():
    torch._dynamo.reset()
    backend = RecordingBackend()

    def f(q, k, v, cu_q, cu_k):
        return kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, q.shape[0], k.shape[0])

    compiled = torch.compile(f, backend=backend, fullgraph=True, dynamic=True)
    for total in (10, 17):
        q, k, v, cu_q, cu_k = varlen_inputs("meta")
        q = torch.empty(total, H, D, dtype=BF16, device="meta")
        check(compiled(q, k, v, cu_q, cu_k), (total, H, DV), BF16)
    graphs = backend.graphs_calling("flash_attn_varlen_func")
    assert len(graphs) == 1, "a second total_q recompiled: %d graphs" % len(graphs)


# --- GPU: the real kernels, compiled and captured ---------------------------------------------------

def gpu_skip_reason():
    if not torch.cuda.is_available():
        return "no CUDA device"
    if not os.environ.get("KERNELS_LOADER_LIBRARY") and not os.path.exists(
            os.path.join(HERE, "..", "..", "loader", "python", "kernels_loader", "libkernels_loader.so")):
        return "KERNELS_LOADER_LIBRARY is not set"
    return None


def test_gpu_compiled_and_graph_captured_calls_match_eager():
    reason = gpu_skip_reason()
    if reason:
        skip("[gpu] " + reason)
    kl._lib = None
    kl._templates.clear()
    torch._dynamo.reset()
    # The stub accepts any head dims (D != DV checks the fake shapes); the kernels need a pair
    # they define: d = dv here.
    q, k, v, cu_q, cu_k = varlen_inputs("cuda", dv=D)
    kq, k_cache, v_cache, lens, table = kvcache_inputs("cuda", dv=D)

    def f(q, k, v, cu_q, cu_k, kq, k_cache, v_cache, lens, table):
        out, lse = kl.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 7, 7, causal=True,
                                             return_softmax_lse=True)
        dec = kl.flash_attn_with_kvcache(kq, k_cache, v_cache, cache_seqlens=lens, page_table=table)
        return out, lse, dec

    args = (q, k, v, cu_q, cu_k, kq, k_cache, v_cache, lens, table)
    eager = f(*args)
    compiled = torch.compile(f, fullgraph=True)(*args)
    for e, c in zip(eager, compiled):
        assert torch.equal(e, c)  # same kernels, same inputs: bitwise
    static = [t.clone() for t in args]
    graph = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        f(*static)  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(graph):
        captured = f(*static)
    graph.replay()
    torch.cuda.synchronize()
    for e, c in zip(eager, captured):
        assert torch.equal(e, c)


def main():
    print("torch", torch.__version__)
    try:
        return run_tests(globals(), verbose=True)
    finally:
        kl._lib = None


if __name__ == "__main__":
    sys.exit(main())
