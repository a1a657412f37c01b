// "did you mean `download`?": the known name closest to a mistyped one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kernels::cli {

// The candidate with the smallest edit distance (insert, delete, substitute, swap of two
// neighbours) to `typed`, if that distance is at most 2 and under half of `typed`'s length, so
// that "downlod" suggests "download" and "x" suggests nothing. Ties go to the first candidate.
std::optional<std::string> closest_name(std::string_view typed,
                                        const std::vector<std::string>& candidates);

}  // namespace kernels::cli
