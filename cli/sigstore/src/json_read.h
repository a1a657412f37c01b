// nlohmann's DOM parser behind a nesting bound (it recurses once per level, so an input of a few
// thousand '[' would otherwise exhaust the stack) and without exceptions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kernels::sigstore {

// nullopt with `error` set when the text is not JSON, nests deeper than `max_depth`, or is larger
// than `max_bytes`.
std::optional<nlohmann::json> read_json(std::string_view text, std::string& error,
                                        int max_depth = 32, std::size_t max_bytes = 4 << 20);

// A member that must be a string / an array / an object; nullptr when absent or of another type.
const std::string* string_at(const nlohmann::json& object, const char* key);
const nlohmann::json* object_at(const nlohmann::json& object, const char* key);
const nlohmann::json* array_at(const nlohmann::json& object, const char* key);
// A protobuf JSON int64: a decimal string ("5") or a non-negative JSON integer.
std::optional<std::int64_t> int64_at(const nlohmann::json& object, const char* key);

}  // namespace kernels::sigstore
