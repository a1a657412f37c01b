// The qualifier of the small primitives that are pure index arithmetic or scalar math: with nvcc
// they are inlined host and device functions, with a host compiler plain inline functions, so the
// CPU tests (tests/kernels, built without CUDA too) run the very code the kernels run.
#pragma once

#if defined(__CUDACC__)
#define KERNELS_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KERNELS_HOST_DEVICE inline
#endif

namespace kernels::device {

// min/max on int for both sides: CUDA's ::min/::max in device code (what the kernels always
// used: a plain `a < b ? a : b` there compiles to different, not better, machine code), the
// conditional on the host (no ::min there; std::min is not callable from device code without
// --expt-relaxed-constexpr).
KERNELS_HOST_DEVICE int imin(int a, int b) {
#if defined(__CUDA_ARCH__)
  return ::min(a, b);
#else
  return a < b ? a : b;
#endif
}
KERNELS_HOST_DEVICE int imax(int a, int b) {
#if defined(__CUDA_ARCH__)
  return ::max(a, b);
#else
  return a > b ? a : b;
#endif
}

}  // namespace kernels::device
