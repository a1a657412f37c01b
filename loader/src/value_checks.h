// Opt-in checks of the index values FlashAttention-3 trusts (cu_seqlens, cache_seqlens, page
// ids) and reads out of bounds with when they are wrong. They copy those values to the host and
// wait for the stream, so they are off by default (KERNELS_LOADER_DEBUG_CHECKS=1 or
// Options::debug_checks turns them on) and a call with them on is not graph-capturable.
#pragma once

#include "kernels/attention/params.h"
#include "kernels/loader/driver.h"

namespace kernels::loader {

// ErrorCode::usage with "[values]" and the argument named, or the driver's error.
Result<void> check_index_values(Driver& driver, Context context, Stream stream,
                                const attention::FwdParams& params);

}  // namespace kernels::loader
