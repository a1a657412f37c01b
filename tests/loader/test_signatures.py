#!/usr/bin/env python3
"""kernels_loader's Python signatures against the recorded SGLang and FA3 ones
(tests/fixtures/sglang-fa3-api/signatures.json). No GPU or torch needed: signatures only, and the
refusals of what the kernels do not support, which come before any tensor is touched.

  - SGLang's unified interface calls positionally: our parameters start with its exact order.
  - Keywords SGLang passes later (only_qv, out) and FA3's own names (deterministic,
    return_attn_probs) are accepted.
  - Defaults that change behaviour match.
"""
import inspect
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "loader", "python"))
import kernels_loader  # noqa: E402

with open(os.path.join(HERE, "..", "fixtures", "sglang-fa3-api", "signatures.json")) as f:
    RECORDED = json.load(f)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


for name in ("flash_attn_with_kvcache", "flash_attn_varlen_func"):
    ours = inspect.signature(getattr(kernels_loader, name)).parameters
    names = list(ours)
    sgl = RECORDED["sglang_unified"][name]
    check(names[:len(sgl)] == sgl,
          f"{name}: positional order differs from SGLang's unified interface:\n  ours {names[:len(sgl)]}\n  sgl  {sgl}")
    for kw in RECORDED["sglang_keywords_later"][name] + RECORDED["fa3_upstream"][name]:
        check(kw in ours, f"{name}: does not accept {kw}= (SGLang or FA3 passes it)")
    for kw, want in RECORDED["defaults"][name].items():
        got = ours[kw].default if kw in ours else "<missing>"
        got = list(got) if isinstance(got, tuple) else got
        check(got == want, f"{name}: default {kw}={got!r}, SGLang has {want!r}")

# What the kernels do not support is refused with a clear message, not a TypeError.
for call, kwargs, needle in (
        (kernels_loader.flash_attn_with_kvcache, {"only_qv": True}, "only_qv"),
        (kernels_loader.flash_attn_varlen_func, {"only_qv": True}, "only_qv"),
        (kernels_loader.flash_attn_varlen_func, {"score_mod": object()}, "score_mod")):
    try:
        if call is kernels_loader.flash_attn_with_kvcache:
            call(None, None, None, **kwargs)
        else:
            call(None, None, None, None, None, **kwargs)
        failures.append(f"{call.__name__}({kwargs}) was not refused")
    except kernels_loader.KernelsLoaderError as e:
        check(needle in str(e), f"{call.__name__}({kwargs}): message does not name {needle}: {e}")
    except Exception as e:  # noqa: BLE001
        failures.append(f"{call.__name__}({kwargs}) raised {type(e).__name__}: {e}")

if failures:
    print("\n".join(failures))
    print(f"signatures: {len(failures)} failed")
    sys.exit(1)
print("signatures: all checks passed")
