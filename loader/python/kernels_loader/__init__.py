"""FlashAttention-3's Python entry points over libkernels_loader.so (ctypes; no build against torch).

    import kernels_loader
    out = kernels_loader.flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k,
                                                max_seqlen_q, max_seqlen_k, causal=True)
    out, lse = kernels_loader.flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=lens,
                                                      page_table=table, causal=True,
                                                      return_softmax_lse=True)

Same parameters and semantics as FA3's (sgl-kernel) functions, plus `ver` (3 or 4) and `out`.
Calls run on torch's current stream; out, softmax_lse and the workspace are allocated with torch,
so a call is capturable in a CUDA graph. Arguments are validated by the library before anything
is launched; errors raise KernelsLoaderError (a RuntimeError) with the library's message.

With torch 2.4 or newer, importing the package registers both functions as torch.library custom
ops with fake (meta) implementations, and the functions call them whenever the call is traced or
observed (torch.compile, torch.export, FakeTensorMode or another dispatch mode), so torch.compile
(fullgraph too) sees one op per call; plain eager calls run the op's implementation directly,
without the dispatcher's per-call cost. Either way the launch is capturable in a CUDA graph:
    torch.ops.kernels_loader.flash_attn_varlen_func(q, k, v, ...)   -> (out, softmax_lse)
    torch.ops.kernels_loader.flash_attn_with_kvcache(q, k_cache, v_cache, ...) -> (out, softmax_lse)
    torch.ops.kernels_loader.flash_attn_varlen_func_out(..., out=out)  -> softmax_lse (writes out)
    torch.ops.kernels_loader.flash_attn_with_kvcache_out(..., out=out) -> softmax_lse (writes out)
The ops take window_size as window_left, window_right and return an empty softmax_lse unless
return_softmax_lse. Without torch the package imports and device_source()/init() work.

The library is found through $KERNELS_LOADER_LIBRARY, else next to this package (a build tree
copies it there), else the build tree's loader/ directory.
"""

import ctypes
import logging
import os
import threading

# The project's version (CMakeLists.txt's project(VERSION); tests/loader/test_pip_install.sh checks
# they agree). pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = [
    "__version__",
    "flash_attn_varlen_func",
    "flash_attn_with_kvcache",
    "device_source",
    "init",
    "KernelsLoaderError",
]

_log = logging.getLogger("kernels_loader")

KL_OK = 0
KL_ERR_INVALID_ARGUMENT = 2
KL_ERR_NO_VARIANT = 12
KL_ERR_NO_DEVICE = 14

_DTYPE_NONE, _F16, _BF16, _F32, _I32, _E4M3, _I64 = 0, 1, 2, 3, 4, 5, 6


class KernelsLoaderError(RuntimeError):
    """A failed call: `status` is the library's status code (kernels' exit-code table)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class _Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.c_int64 * 4),
        ("stride", ctypes.c_int64 * 4),
        ("device", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
    ]


_T = _Tensor


class _VarlenArgs(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32), ("ver", ctypes.c_int32),
        ("q", _T), ("k", _T), ("v", _T), ("cu_seqlens_q", _T), ("cu_seqlens_k", _T),
        ("max_seqlen_q", ctypes.c_int64), ("max_seqlen_k", ctypes.c_int64),
        ("seqused_q", _T), ("seqused_k", _T), ("page_table", _T),
        ("softmax_scale", ctypes.c_double), ("causal", ctypes.c_int32),
        ("window_left", ctypes.c_int32), ("window_right", ctypes.c_int32),
        ("attention_chunk", ctypes.c_int32), ("softcap", ctypes.c_float),
        ("num_splits", ctypes.c_int32), ("pack_gqa", ctypes.c_int32), ("sm_margin", ctypes.c_int32),
        ("qv", _T), ("q_descale", _T), ("k_descale", _T), ("v_descale", _T), ("sinks", _T),
        ("out", _T), ("softmax_lse", _T),
        ("workspace", ctypes.c_void_p), ("workspace_bytes", ctypes.c_size_t),
        ("check_values", ctypes.c_int32),
    ]


class _KvcacheArgs(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32), ("ver", ctypes.c_int32),
        ("q", _T), ("k_cache", _T), ("v_cache", _T), ("k", _T), ("v", _T), ("qv", _T),
        ("rotary_cos", _T), ("rotary_sin", _T), ("cache_seqlens", _T), ("cache_batch_idx", _T),
        ("cache_leftpad", _T), ("page_table", _T), ("cu_seqlens_q", _T), ("cu_seqlens_k_new", _T),
        ("max_seqlen_q", ctypes.c_int64), ("rotary_seqlens", _T),
        ("q_descale", _T), ("k_descale", _T), ("v_descale", _T),
        ("softmax_scale", ctypes.c_double), ("causal", ctypes.c_int32),
        ("window_left", ctypes.c_int32), ("window_right", ctypes.c_int32),
        ("attention_chunk", ctypes.c_int32), ("softcap", ctypes.c_float),
        ("rotary_interleaved", ctypes.c_int32), ("scheduler_metadata", _T),
        ("num_splits", ctypes.c_int32), ("pack_gqa", ctypes.c_int32), ("sm_margin", ctypes.c_int32),
        ("sinks", _T), ("out", _T), ("softmax_lse", _T),
        ("workspace", ctypes.c_void_p), ("workspace_bytes", ctypes.c_size_t),
        ("check_values", ctypes.c_int32),
    ]


class _Options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("lockfile", ctypes.c_char_p), ("cache_dir", ctypes.c_char_p),
        ("fa3_repo", ctypes.c_char_p), ("fa4_repo", ctypes.c_char_p),
        ("force_builtin", ctypes.c_int32),
    ]


class _SourceInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32), ("source", ctypes.c_int32), ("reason_code", ctypes.c_int32),
        ("reason", ctypes.c_char * 512), ("repo_id", ctypes.c_char * 128),
        ("sha", ctypes.c_char * 48), ("variant", ctypes.c_char * 64),
    ]


_SINK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}


def _on_log(level, message, _user):
    _log.log(_LEVELS.get(level, logging.WARNING), "%s", message.decode("utf-8", "replace"))


_sink_ref = _SINK(_on_log)  # kept alive for the life of the process
_lib = None
_lib_lock = threading.Lock()


def _library_path():
    env = os.environ.get("KERNELS_LOADER_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "libkernels_loader.so"),
                      os.path.join(here, "..", "..", "libkernels_loader.so")):
        if os.path.exists(candidate):
            return candidate
    raise KernelsLoaderError(
        KL_ERR_NO_DEVICE,
        "libkernels_loader.so not found next to %s\nhint: set KERNELS_LOADER_LIBRARY to its path"
        % here)


def _library():
    global _lib
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.CDLL(_library_path())
            lib.kernels_loader_last_error.restype = ctypes.c_char_p
            lib.kernels_loader_set_log_sink.argtypes = [_SINK, ctypes.c_void_p]
            for name, argt in (("varlen", _VarlenArgs), ("kvcache", _KvcacheArgs)):
                ws = getattr(lib, "kernels_loader_%s_workspace_size" % name)
                ws.argtypes = [ctypes.POINTER(argt), ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
                getattr(lib, "kernels_loader_%s_args_init" % name).argtypes = [ctypes.POINTER(argt)]
            lib.kernels_loader_flash_attn_varlen_func.argtypes = [ctypes.POINTER(_VarlenArgs),
                                                                  ctypes.c_void_p]
            lib.kernels_loader_flash_attn_with_kvcache.argtypes = [ctypes.POINTER(_KvcacheArgs),
                                                                   ctypes.c_void_p]
            lib.kernels_loader_device_source.argtypes = [ctypes.c_int, ctypes.c_int,
                                                         ctypes.POINTER(_SourceInfo)]
            lib.kernels_loader_init.argtypes = [ctypes.POINTER(_Options)]
            lib.kernels_loader_set_log_sink(_sink_ref, None)
            _lib = lib
    return _lib


def _check(status):
    if status != KL_OK:
        raise KernelsLoaderError(status, _library().kernels_loader_last_error().decode("utf-8", "replace"))


def _c_string(value, name):
    """A str or path as the bytes C will read; a NUL would silently cut it short there."""
    if value is None:
        return None
    raw = os.fsencode(value)
    if b"\0" in raw:
        raise ValueError("%s contains a NUL character: %r" % (name, value))
    return raw


def _c_int(value, name):
    """An int argument of the C ABI; ctypes would silently keep only its low 32 bits."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = value.__index__()
        except AttributeError:
            raise TypeError("%s must be an int, got %s" % (name, type(value).__name__)) from None
    if not -2**31 <= value < 2**31:
        raise ValueError("%s=%d is out of range for a C int" % (name, value))
    return value


def _text(raw):
    """A C string the library filled: a cache path need not be UTF-8, and a fixed-size buffer may
    cut a multi-byte character; neither may make a status query raise."""
    return raw.decode("utf-8", "replace")


def init(lockfile=None, cache_dir=None, fa3_repo=None, fa4_repo=None, force_builtin=None):
    """Optional explicit start-up (loads and checks the built-in kernels). The first call does it
    with the environment's settings otherwise."""
    lib = _library()
    o = _Options()
    o.struct_size = ctypes.sizeof(_Options)
    o.lockfile, o.cache_dir = _c_string(lockfile, "lockfile"), _c_string(cache_dir, "cache_dir")
    o.fa3_repo, o.fa4_repo = _c_string(fa3_repo, "fa3_repo"), _c_string(fa4_repo, "fa4_repo")
    o.force_builtin = -1 if force_builtin is None else int(bool(force_builtin))
    _check(lib.kernels_loader_init(ctypes.byref(o)))


def device_source(device=0, ver=3):
    """Which kernels serve (device, ver): {"source": "bundle"|"builtin"|"unavailable", ...}."""
    device, ver = _c_int(device, "device"), _c_int(ver, "ver")
    info = _blank(_SourceInfo, "kernels_loader_source_info_init")
    _check(_library().kernels_loader_device_source(device, ver, ctypes.byref(info)))
    return {
        "source": {1: "bundle", 2: "builtin"}.get(info.source, "unavailable"),
        "reason": _text(info.reason),
        "reason_code": info.reason_code,
        "repo_id": _text(info.repo_id),
        "sha": _text(info.sha),
        "variant": _text(info.variant),
    }


_dtype_table = None


def _dtype_code(torch, dtype):
    global _dtype_table
    if _dtype_table is None:
        table = {torch.float16: _F16, torch.bfloat16: _BF16, torch.float32: _F32,
                 torch.int32: _I32, torch.int64: _I64}
        e4m3 = getattr(torch, "float8_e4m3fn", None)
        if e4m3 is not None:
            table[e4m3] = _E4M3
        _dtype_table = table
    return _dtype_table.get(dtype, 99)


def _tensor(torch, t, name):
    out = _Tensor()
    if t is None:
        return out
    if not isinstance(t, torch.Tensor):
        raise TypeError("%s must be a torch.Tensor or None, got %s" % (name, type(t).__name__))
    if t.dim() > 4:
        raise KernelsLoaderError(KL_ERR_INVALID_ARGUMENT, "%s has %d dimensions (at most 4)" % (name, t.dim()))
    ptr = t.data_ptr()
    out.data = ptr if ptr else 16  # an empty tensor is still "given"
    out.dtype = _dtype_code(torch, t.dtype)
    n = t.dim()
    out.ndim = n
    out.shape[:n] = t.shape
    out.stride[:n] = t.stride()
    dev = t.device
    out.device = dev.index if dev.type == "cuda" else -1
    return out


def _stream(torch, device):
    if device.type != "cuda" and not torch.cuda.is_available():
        # A CPU tensor with a torch that has no CUDA: the library refuses the call (naming the
        # tensor) before any stream is used.
        return ctypes.c_void_p(0)
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # cheap; torch.cuda's is not
    if raw is not None:
        return ctypes.c_void_p(raw(device.index if device.index is not None else torch.cuda.current_device()))
    return ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream)


_templates = {}


def _blank(struct, init_name):
    """A defaults-filled args struct: initialised once through the library, then copied."""
    t = _templates.get(struct)
    if t is None:
        t = struct()
        getattr(_library(), init_name)(ctypes.byref(t))
        _templates[struct] = t
    return struct.from_buffer_copy(t)


def _sinks(sinks):
    # FA3 takes bf16 sinks; these kernels read fp32 (a tiny (h,) conversion, capturable).
    if sinks is not None and sinks.dtype != __import__("torch").float32:
        return sinks.float()
    return sinks


def _env_truthy(name):
    # The C++ library's rule (lockfile env.h), which is huggingface_hub's: 1/ON/YES/TRUE, any case.
    return os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE")


def _debug_checks_enabled():
    return _env_truthy("KERNELS_LOADER_DEBUG_CHECKS")


def _refuse(**unsupported):
    for name, value in unsupported.items():
        if value is not None:
            raise KernelsLoaderError(KL_ERR_INVALID_ARGUMENT,
                                     "%s is not supported by kernels_loader [unsupported]" % name)


_REQUIRED = object()

# The arguments each entry point hands the library, in SGLang's positional order, with their
# torch.library schema types and defaults: the one list the custom ops' schemas, the public
# functions and the launch are built from. window_size is two ints here (a schema has no tuples).
_VARLEN_ARGS = (
    ("q", "Tensor", _REQUIRED), ("k", "Tensor", _REQUIRED), ("v", "Tensor", _REQUIRED),
    ("cu_seqlens_q", "Tensor?", None), ("cu_seqlens_k", "Tensor?", None),
    ("max_seqlen_q", "SymInt?", None), ("max_seqlen_k", "SymInt?", None),
    ("seqused_q", "Tensor?", None), ("seqused_k", "Tensor?", None), ("page_table", "Tensor?", None),
    ("softmax_scale", "float?", None), ("causal", "bool", False), ("qv", "Tensor?", None),
    ("q_descale", "Tensor?", None), ("k_descale", "Tensor?", None), ("v_descale", "Tensor?", None),
    ("window_left", "int", -1), ("window_right", "int", -1), ("attention_chunk", "int", 0),
    ("softcap", "float", 0.0), ("num_splits", "int", 1), ("pack_gqa", "bool?", None),
    ("sm_margin", "int", 0), ("return_softmax_lse", "bool", False), ("sinks", "Tensor?", None),
    ("ver", "int", 3),
)
_KVCACHE_ARGS = (
    ("q", "Tensor", _REQUIRED), ("k_cache", "Tensor", _REQUIRED), ("v_cache", "Tensor", _REQUIRED),
    ("k", "Tensor?", None), ("v", "Tensor?", None), ("qv", "Tensor?", None),
    ("rotary_cos", "Tensor?", None), ("rotary_sin", "Tensor?", None),
    ("cache_seqlens", "Tensor?", None), ("cache_batch_idx", "Tensor?", None),
    ("cache_leftpad", "Tensor?", None), ("page_table", "Tensor?", None),
    ("cu_seqlens_q", "Tensor?", None), ("cu_seqlens_k_new", "Tensor?", None),
    ("max_seqlen_q", "SymInt?", None), ("rotary_seqlens", "Tensor?", None),
    ("q_descale", "Tensor?", None), ("k_descale", "Tensor?", None), ("v_descale", "Tensor?", None),
    ("softmax_scale", "float?", None), ("causal", "bool", False),
    ("window_left", "int", -1), ("window_right", "int", -1), ("attention_chunk", "int", 0),
    ("softcap", "float", 0.0), ("rotary_interleaved", "bool", True),
    ("scheduler_metadata", "Tensor?", None), ("num_splits", "int", 0), ("pack_gqa", "bool?", None),
    ("sm_margin", "int", 0), ("return_softmax_lse", "bool", False), ("sinks", "Tensor?", None),
    ("ver", "int", 3),
)
# entry point -> (argument list, args struct, its init function, workspace query, launch function)
_ENTRY = {
    "flash_attn_varlen_func": (_VARLEN_ARGS, _VarlenArgs, "kernels_loader_varlen_args_init",
                               "kernels_loader_varlen_workspace_size",
                               "kernels_loader_flash_attn_varlen_func"),
    "flash_attn_with_kvcache": (_KVCACHE_ARGS, _KvcacheArgs, "kernels_loader_kvcache_args_init",
                                "kernels_loader_kvcache_workspace_size",
                                "kernels_loader_flash_attn_with_kvcache"),
}
# Set in the args struct as they are (not tensors, not the window pair).
_SCALARS = {"max_seqlen_q": -1, "max_seqlen_k": -1, "softmax_scale": 0.0, "causal": 0,
            "attention_chunk": 0, "softcap": 0.0, "rotary_interleaved": 1, "num_splits": 1,
            "pack_gqa": -1, "sm_margin": 0, "ver": 3}


def _outputs(torch, entry, a, out=None):
    """out and softmax_lse as FA3 shapes them: the one rule for the launch and for the custom ops'
    fake implementations (which call it with fake or meta tensors). softmax_lse is None unless
    return_softmax_lse. varlen: out (total_q, h, dv), lse (h, total_q); kvcache: out is q's shape
    with dv last, lse (b, h, s_q), or (h, total_q) with cu_seqlens_q."""
    q = a["q"]
    dv = (a["v"] if entry == "flash_attn_varlen_func" else a["v_cache"]).shape[-1]
    if out is None:
        out = q.new_empty((*q.shape[:-1], dv))
    lse = None
    if a["return_softmax_lse"]:
        if q.dim() == 3:  # varlen q: (total_q, h, d)
            shape = (q.shape[1], q.shape[0])
        else:  # (b, s_q, h, d)
            shape = (q.shape[0], q.shape[2], q.shape[1])
        lse = q.new_empty(shape, dtype=torch.float32)
    return out, lse


def _launch(torch, entry, a, out=None):
    """The call itself (eager): allocates out/softmax_lse (and a workspace when the call splits),
    fills the args struct, launches on torch's current stream. Returns (out, softmax_lse or None)."""
    arg_list, _struct, init_name, ws_name, fn_name = _ENTRY[entry]
    lib = _library()
    out, lse = _outputs(torch, entry, a, out)
    s = _blank(_struct, init_name)
    # The index values are checked by the library (value_checks.cpp), per call as the variable says
    # now: a copy to the host, so the stream synchronises.
    s.check_values = 1 if _debug_checks_enabled() else 0
    tensors = dict(a, sinks=_sinks(a["sinks"]), out=out, softmax_lse=lse)
    for name, kind, _default in arg_list + (("out", "Tensor", None), ("softmax_lse", "Tensor?", None)):
        if kind.startswith("Tensor") and tensors[name] is not None:
            setattr(s, name, _tensor(torch, tensors[name], name))
    for name, unset in _SCALARS.items():
        if name in a:
            value = a[name]
            if isinstance(value, bool) or (name == "pack_gqa" and value is not None):
                value = int(bool(value))
            setattr(s, name, unset if value is None else value)
    s.window_left, s.window_right = int(a["window_left"]), int(a["window_right"])
    stream = _stream(torch, a["q"].device)
    nbytes = ctypes.c_size_t(0)
    if s.num_splits != 1:  # num_splits=1 never splits, so it needs no workspace
        _check(getattr(lib, ws_name)(ctypes.byref(s), stream, ctypes.byref(nbytes)))
    ws = torch.empty(nbytes.value, dtype=torch.uint8, device=a["q"].device) if nbytes.value else None
    if ws is not None:
        s.workspace, s.workspace_bytes = ws.data_ptr(), nbytes.value
    _check(getattr(lib, fn_name)(ctypes.byref(s), stream))
    del tensors, ws  # alive through the call
    return out, lse


# torch.library custom ops: torch.ops.kernels_loader.flash_attn_varlen_func and
# .flash_attn_with_kvcache return (out, softmax_lse); the *_out variants write a given `out` and
# return softmax_lse. softmax_lse is an empty float32 tensor when return_softmax_lse is False (an
# op's outputs cannot be None). Their fake implementations give torch.compile the output shapes,
# so a compiled function calls them without a graph break, and CUDA graphs capture their launches.
_OPS_NAMESPACE = "kernels_loader"
_ops = None        # torch.ops.kernels_loader once registered
_ops_library = None  # the torch.library.Library holding the definitions (kept alive)
_ops_error = None  # why they are not registered (no torch, a torch without torch.library.register_fake)


def _schema(entry, with_out):
    arg_list = _ENTRY[entry][0]
    parts = []
    for name, kind, default in arg_list:
        text = "%s %s" % (kind, name)
        if default is not _REQUIRED:
            text += "=" + ("None" if default is None else str(default))
        parts.append(text)
    if with_out:
        parts += ["*", "Tensor(a!) out"]  # keyword-only: after the defaults, as aten's out=
        return "%s_out(%s) -> Tensor" % (entry, ", ".join(parts))
    return "%s(%s) -> (Tensor, Tensor)" % (entry, ", ".join(parts))


def _bind(entry, args, kwargs):
    """The dispatcher's (args, kwargs) as {name: value}, defaults filled in."""
    names = [n for n, _k, _d in _ENTRY[entry][0]] + ["out"]
    a = dict(zip(names, args))
    a.update(kwargs)
    for name, _kind, default in _ENTRY[entry][0]:
        a.setdefault(name, default)
    return a


def _no_lse(torch, q):
    return q.new_empty((0,), dtype=torch.float32)


def _register_ops(torch):
    """Defines the custom ops when torch has torch.library.register_fake (2.4+). Returns
    torch.ops.kernels_loader, or None with the reason in _ops_error."""
    global _ops_library, _ops_error
    library_api = getattr(torch, "library", None)
    if library_api is None or not hasattr(library_api, "register_fake"):
        _ops_error = "torch %s has no torch.library.register_fake (2.4 or newer needed)" % torch.__version__
        return None
    ns = getattr(torch.ops, _OPS_NAMESPACE)
    if hasattr(ns, "flash_attn_varlen_func"):  # another copy of this package registered them
        return ns
    lib = library_api.Library(_OPS_NAMESPACE, "FRAGMENT")
    for entry in _ENTRY:
        for with_out in (False, True):
            name = entry + ("_out" if with_out else "")
            lib.define(_schema(entry, with_out))

            def kernel(produce, _entry=entry, _with_out=with_out):
                # The op's result from `produce`: _launch (the real kernel) or _outputs (fake).
                def run(*args, **kwargs):
                    a = _bind(_entry, args, kwargs)
                    out, lse = produce(torch, _entry, a, a.pop("out", None) if _with_out else None)
                    lse = lse if lse is not None else _no_lse(torch, a["q"])
                    return lse if _with_out else (out, lse)
                return run

            real, fake = kernel(_launch), kernel(_outputs)
            # CPU too: a CPU tensor then gets the library's own refusal (and tests run over a stub).
            for key in ("CUDA", "CPU"):
                lib.impl(name, real, key)
            library_api.register_fake("%s::%s" % (_OPS_NAMESPACE, name), fake, lib=lib)
    _ops_library = lib
    return ns


def _init_ops():
    global _ops, _ops_error
    try:
        import torch
    except ImportError:
        _ops_error = "torch is not installed"
        return
    except Exception as e:  # a broken torch install (a missing CUDA library, ...) must not break ours
        _ops_error = "importing torch failed: %s: %s" % (type(e).__name__, e)
        _log.warning("%s; no custom ops registered", _ops_error)
        return
    try:
        _ops = _register_ops(torch)
    except Exception as e:  # never make the package unusable: the functions still run eagerly
        _ops_error = "registering torch.ops.%s failed: %s: %s" % (_OPS_NAMESPACE, type(e).__name__, e)
        _log.warning("%s; calls run without custom ops (torch.compile will break the graph there)",
                     _ops_error)


def _eager(torch, q):
    """Whether a call may skip the op: plain tensors, not under torch.compile/export, and no
    dispatch mode (FakeTensorMode, FlopCounterMode, ...) that should see the op. The dispatcher's
    boxing of ~30 arguments costs tens of microseconds a call that eager callers need not pay."""
    if type(q) is not torch.Tensor or torch.compiler.is_compiling():
        return False
    stack_depth = getattr(torch._C, "_len_torch_dispatch_stack", None)
    return stack_depth is not None and stack_depth() == 0


def _call(torch, entry, a, out):
    """Through the custom op when registered and the call is traced or observed (torch.compile and
    CUDA graphs see one op), else the launch itself (the op's own implementation). Returns
    (out, softmax_lse, or None / the op's empty tensor when not asked for)."""
    if _ops is None or _eager(torch, a["q"]):
        return _launch(torch, entry, a, out)
    args = [a[name] for name, _kind, _default in _ENTRY[entry][0]]
    if out is None:
        return getattr(_ops, entry)(*args)
    return out, getattr(_ops, entry + "_out")(*args, out=out)


def _max_seqlen(torch, value):
    # An int (or a SymInt under torch.compile) as the schema takes it; anything int-like converted.
    if value is None or isinstance(value, (int, torch.SymInt)):
        return value
    return int(value)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           seqused_q=None, seqused_k=None, page_table=None, softmax_scale=None,
                           causal=False, qv=None, q_descale=None, k_descale=None, v_descale=None,
                           window_size=(-1, -1), attention_chunk=0, softcap=0.0, num_splits=1,
                           pack_gqa=None, sm_margin=0, return_softmax_lse=False, sinks=None,
                           score_mod=None, aux_tensors=None, ver=3, out=None, only_qv=False,
                           deterministic=False, return_attn_probs=False):
    """FA3's varlen attention: q (total_q, h, d), k/v (total_k, h_k, d/dv) packed by cu_seqlens
    (or a paged cache with page_table). Returns out (total_q, h, dv), or (out, softmax_lse (h, total_q))
    with return_softmax_lse (or FA3's return_attn_probs). Parameters and positional order are
    SGLang's unified interface; FA3's names are accepted as keywords. deterministic is accepted for
    FA3 callers: the forward is deterministic for a given num_splits (no atomics). Raises
    KernelsLoaderError (status, message) for arguments the kernels do not support (only_qv=True,
    score_mod, aux_tensors, fp8, ...) before anything runs. With torch 2.4+ the call goes through
    torch.ops.kernels_loader.flash_attn_varlen_func (or its _out variant when out is given)."""
    _refuse(score_mod=score_mod, aux_tensors=aux_tensors, only_qv=only_qv or None)
    import torch

    return_softmax_lse = bool(return_softmax_lse or return_attn_probs)
    a = dict(q=q, k=k, v=v, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k,
             max_seqlen_q=_max_seqlen(torch, max_seqlen_q), max_seqlen_k=_max_seqlen(torch, max_seqlen_k),
             seqused_q=seqused_q, seqused_k=seqused_k, page_table=page_table,
             softmax_scale=None if softmax_scale is None else float(softmax_scale), causal=bool(causal),
             qv=qv, q_descale=q_descale, k_descale=k_descale, v_descale=v_descale,
             window_left=int(window_size[0]), window_right=int(window_size[1]),
             attention_chunk=int(attention_chunk or 0), softcap=float(softcap or 0.0),
             num_splits=int(num_splits), pack_gqa=None if pack_gqa is None else bool(pack_gqa),
             sm_margin=int(sm_margin), return_softmax_lse=return_softmax_lse, sinks=sinks, ver=int(ver))
    out, lse = _call(torch, "flash_attn_varlen_func", a, out)
    return (out, lse) if return_softmax_lse else out


def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, qv=None, rotary_cos=None,
                            rotary_sin=None, cache_seqlens=None, cache_batch_idx=None,
                            cache_leftpad=None, page_table=None, cu_seqlens_q=None,
                            cu_seqlens_k_new=None, max_seqlen_q=None, rotary_seqlens=None,
                            q_descale=None, k_descale=None, v_descale=None, softmax_scale=None,
                            causal=False, window_size=(-1, -1), attention_chunk=None, softcap=0.0,
                            rotary_interleaved=True, scheduler_metadata=None, num_splits=0,
                            pack_gqa=None, sm_margin=0, return_softmax_lse=False, sinks=None,
                            score_mod=None, aux_tensors=None, ver=3, out=None, only_qv=False):
    """FA3's attention over a KV cache: q (b, s_q, h, d) or varlen (total_q, h, d) with
    cu_seqlens_q; k_cache/v_cache (b, s_k, h_k, d) or paged (num_pages, page_size, h_k, d) with
    page_table; cache_seqlens (int or (b,) int32) = keys used per batch. Returns out, or
    (out, softmax_lse) with return_softmax_lse. Parameters and positional order are SGLang's unified
    interface (sgl-kernel's); only_qv and out are keywords as SGLang passes them. Appending k/v,
    rotary, only_qv=True, score_mod and aux_tensors are refused with KernelsLoaderError. With torch
    2.4+ the call goes through torch.ops.kernels_loader.flash_attn_with_kvcache (or its _out
    variant when out is given)."""
    _refuse(score_mod=score_mod, aux_tensors=aux_tensors, only_qv=only_qv or None)
    import torch

    if isinstance(cache_seqlens, int):
        # The batch comes from q (or cu_seqlens_q), never from k_cache, which is pages when paged.
        batch = cu_seqlens_q.shape[0] - 1 if cu_seqlens_q is not None else q.shape[0]
        cache_seqlens = torch.full((batch,), cache_seqlens, dtype=torch.int32, device=q.device)
    return_softmax_lse = bool(return_softmax_lse)
    a = dict(q=q, k_cache=k_cache, v_cache=v_cache, k=k, v=v, qv=qv, rotary_cos=rotary_cos,
             rotary_sin=rotary_sin, cache_seqlens=cache_seqlens, cache_batch_idx=cache_batch_idx,
             cache_leftpad=cache_leftpad, page_table=page_table, cu_seqlens_q=cu_seqlens_q,
             cu_seqlens_k_new=cu_seqlens_k_new, max_seqlen_q=_max_seqlen(torch, max_seqlen_q),
             rotary_seqlens=rotary_seqlens, q_descale=q_descale, k_descale=k_descale, v_descale=v_descale,
             softmax_scale=None if softmax_scale is None else float(softmax_scale), causal=bool(causal),
             window_left=int(window_size[0]), window_right=int(window_size[1]),
             attention_chunk=int(attention_chunk or 0), softcap=float(softcap or 0.0),
             rotary_interleaved=bool(rotary_interleaved), scheduler_metadata=scheduler_metadata,
             num_splits=int(num_splits), pack_gqa=None if pack_gqa is None else bool(pack_gqa),
             sm_margin=int(sm_margin), return_softmax_lse=return_softmax_lse, sinks=sinks, ver=int(ver))
    out, lse = _call(torch, "flash_attn_with_kvcache", a, out)
    return (out, lse) if return_softmax_lse else out


_init_ops()
