// The built-in attention kernels as one fatbin (sm_80 and sm_90 machine code plus compute_80 PTX),
// embedded in the program. Present only when the build had nvcc (KERNELS_HAVE_BUILTIN_IMAGE).
// Load it with cuLibraryLoadData / cuModuleLoadData and look kernels up by the names in
// kernel_table() (launch_plan.h).
#pragma once

#include <span>

namespace kernels::attention {

std::span<const unsigned char> builtin_image();

}  // namespace kernels::attention
