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


def _check_values(cu_seqlens=(), max_seqlens=(), totals=(), cache_seqlens=None, page_table=None,
                  page_size=None, num_pages=None):
    """FA3 trusts these values and reads out of bounds when they are wrong. Checking them needs
    the values on the host (a synchronisation), so it runs only with KERNELS_LOADER_DEBUG_CHECKS=1."""
    for name, cu, max_len, total in zip(("cu_seqlens_q", "cu_seqlens_k"), cu_seqlens, max_seqlens, totals):
        if cu is None:
            continue
        c = cu.tolist()
        bad = None
        if not c or c[0] != 0:
            bad = "must start at 0"
        elif any(b < a for a, b in zip(c, c[1:])):
            bad = "must be non-decreasing"
        elif total is not None and c[-1] != total:
            bad = "ends at %d but the tensor has %d rows" % (c[-1], total)
        elif max_len is not None and max(b - a for a, b in zip(c, c[1:]) or [0]) > max_len:
            bad = "has a sequence longer than max_seqlen (%d)" % max_len
        if bad:
            raise KernelsLoaderError(KL_ERR_INVALID_ARGUMENT, "%s %s [values]" % (name, bad))
    if cache_seqlens is not None and page_table is not None:
        lens = cache_seqlens.tolist()
        capacity = page_table.shape[1] * page_size
        if any(n < 0 or n > capacity for n in lens):
            raise KernelsLoaderError(KL_ERR_INVALID_ARGUMENT,
                                     "cache_seqlens exceeds page_table capacity %d [values]" % capacity)
        for b, n in enumerate(lens):
            used = page_table[b, : -(-n // page_size)].tolist() if n else []
            if any(p < 0 or p >= num_pages for p in used):
                raise KernelsLoaderError(KL_ERR_INVALID_ARGUMENT,
                                         "page_table row %d names a page outside [0, %d) [values]"
                                         % (b, num_pages))


def _refuse(**unsupported):
    for name, value in unsupported.items():
        if value is not None:
            raise KernelsLoaderError(KL_ERR_INVALID_ARGUMENT,
                                     "%s is not supported by kernels_loader [unsupported]" % name)


def _fill_common(a, softmax_scale, causal, window_size, softcap, num_splits, pack_gqa, sm_margin, ver):
    a.softmax_scale = 0.0 if softmax_scale is None else float(softmax_scale)
    a.causal = int(bool(causal))
    a.window_left, a.window_right = int(window_size[0]), int(window_size[1])
    a.softcap = float(softcap or 0.0)
    a.num_splits = int(num_splits)
    a.pack_gqa = -1 if pack_gqa is None else int(bool(pack_gqa))
    a.sm_margin = int(sm_margin)
    a.ver = int(ver)


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
    score_mod, aux_tensors, fp8, ...) before anything runs."""
    _refuse(score_mod=score_mod, aux_tensors=aux_tensors, only_qv=only_qv or None)
    import torch

    return_softmax_lse = return_softmax_lse or return_attn_probs
    lib = _library()
    total_q, h = q.shape[0], q.shape[1]
    dv = v.shape[-1]
    if out is None:
        out = torch.empty((total_q, h, dv), dtype=q.dtype, device=q.device)
    lse = torch.empty((h, total_q), dtype=torch.float32, device=q.device) if return_softmax_lse else None
    sinks = _sinks(sinks)
    if _debug_checks_enabled():
        paged = page_table is not None
        _check_values((cu_seqlens_q, None if paged else cu_seqlens_k), (max_seqlen_q, max_seqlen_k),
                      (q.shape[0], None if paged else k.shape[0]),
                      seqused_k if paged else None, page_table,
                      k.shape[1] if paged else None, k.shape[0] if paged else None)
    a = _blank(_VarlenArgs, "kernels_loader_varlen_args_init")
    keep = (q, k, v, cu_seqlens_q, cu_seqlens_k, out, lse, sinks)  # alive through the call
    for name, t in (("q", q), ("k", k), ("v", v), ("cu_seqlens_q", cu_seqlens_q),
                    ("cu_seqlens_k", cu_seqlens_k), ("seqused_q", seqused_q), ("seqused_k", seqused_k),
                    ("page_table", page_table), ("qv", qv), ("q_descale", q_descale),
                    ("k_descale", k_descale), ("v_descale", v_descale), ("sinks", sinks),
                    ("out", out), ("softmax_lse", lse)):
        if t is not None:
            setattr(a, name, _tensor(torch, t, name))
    a.max_seqlen_q = -1 if max_seqlen_q is None else int(max_seqlen_q)
    a.max_seqlen_k = -1 if max_seqlen_k is None else int(max_seqlen_k)
    a.attention_chunk = int(attention_chunk or 0)
    _fill_common(a, softmax_scale, causal, window_size, softcap, num_splits, pack_gqa, sm_margin, ver)
    stream = _stream(torch, q.device)
    nbytes = ctypes.c_size_t(0)
    if a.num_splits != 1:  # num_splits=1 never splits, so it needs no workspace
        _check(lib.kernels_loader_varlen_workspace_size(ctypes.byref(a), stream, ctypes.byref(nbytes)))
    ws = torch.empty(nbytes.value, dtype=torch.uint8, device=q.device) if nbytes.value else None
    if ws is not None:
        a.workspace, a.workspace_bytes = ws.data_ptr(), nbytes.value
    _check(lib.kernels_loader_flash_attn_varlen_func(ctypes.byref(a), stream))
    del keep
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
    rotary, only_qv=True, score_mod and aux_tensors are refused with KernelsLoaderError."""
    _refuse(score_mod=score_mod, aux_tensors=aux_tensors, only_qv=only_qv or None)
    import torch

    lib = _library()
    varlen_q = cu_seqlens_q is not None
    batch = cu_seqlens_q.numel() - 1 if varlen_q else q.shape[0]
    if isinstance(cache_seqlens, int):
        # The batch comes from q (or cu_seqlens_q), never from k_cache, which is pages when paged.
        cache_seqlens = torch.full((batch,), cache_seqlens, dtype=torch.int32, device=q.device)
    dv = v_cache.shape[-1]
    if out is None:
        out = torch.empty((*q.shape[:-1], dv), dtype=q.dtype, device=q.device)
    lse = None
    if return_softmax_lse:
        if varlen_q:
            lse = torch.empty((q.shape[1], q.shape[0]), dtype=torch.float32, device=q.device)
        else:
            lse = torch.empty((q.shape[0], q.shape[2], q.shape[1]), dtype=torch.float32, device=q.device)
    sinks = _sinks(sinks)
    if _debug_checks_enabled():
        _check_values((cu_seqlens_q,), (max_seqlen_q,), (q.shape[0],), cache_seqlens, page_table,
                      k_cache.shape[1] if page_table is not None else None, k_cache.shape[0])
    a = _blank(_KvcacheArgs, "kernels_loader_kvcache_args_init")
    keep = (q, k_cache, v_cache, cache_seqlens, page_table, cu_seqlens_q, out, lse, sinks)
    for name, t in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache), ("k", k), ("v", v),
                    ("qv", qv), ("rotary_cos", rotary_cos), ("rotary_sin", rotary_sin),
                    ("cache_seqlens", cache_seqlens), ("cache_batch_idx", cache_batch_idx),
                    ("cache_leftpad", cache_leftpad), ("page_table", page_table),
                    ("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k_new", cu_seqlens_k_new),
                    ("rotary_seqlens", rotary_seqlens), ("q_descale", q_descale),
                    ("k_descale", k_descale), ("v_descale", v_descale),
                    ("scheduler_metadata", scheduler_metadata), ("sinks", sinks), ("out", out),
                    ("softmax_lse", lse)):
        if t is not None:
            setattr(a, name, _tensor(torch, t, name))
    a.max_seqlen_q = -1 if max_seqlen_q is None else int(max_seqlen_q)
    a.attention_chunk = int(attention_chunk or 0)
    a.rotary_interleaved = int(bool(rotary_interleaved))
    _fill_common(a, softmax_scale, causal, window_size, softcap, num_splits, pack_gqa, sm_margin, ver)
    stream = _stream(torch, q.device)
    nbytes = ctypes.c_size_t(0)
    if a.num_splits != 1:  # num_splits=1 never splits, so it needs no workspace
        _check(lib.kernels_loader_kvcache_workspace_size(ctypes.byref(a), stream, ctypes.byref(nbytes)))
    ws = torch.empty(nbytes.value, dtype=torch.uint8, device=q.device) if nbytes.value else None
    if ws is not None:
        a.workspace, a.workspace_bytes = ws.data_ptr(), nbytes.value
    _check(lib.kernels_loader_flash_attn_with_kvcache(ctypes.byref(a), stream))
    del keep
    return (out, lse) if return_softmax_lse else out
