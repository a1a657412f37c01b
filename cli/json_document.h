// The one JSON document every command prints on stdout with --json (docs/JSON.md; the schema is
// docs/kernels-json.schema.json): {"schema": 1, "ok": true, "command": ..., <the command's
// fields>} on success, {"schema": 1, "ok": false, "command": ..., "error": {...}, <fields>} on
// failure. Absent values are null, never "". Always pretty-printed (2 spaces) with one newline.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kernels/lockfile/error.h"

namespace kernels::cli {

// The version of the document's shape; raised only when a key changes meaning or goes away.
inline constexpr int kJsonSchemaVersion = 1;

// `fields` (an object, or null for none) after the envelope's keys.
std::string json_success(std::string_view command, const nlohmann::json& fields);
// "code" is error_code_name (or `code_name` when given: "interrupted", "terminated"), "exit"
// the process's exit status.
std::string json_failure(std::string_view command, const Error& error, int exit,
                         const nlohmann::json& fields, std::string_view code_name = {});

// "" as null: for optional text in a command's fields.
nlohmann::json text_or_null(const std::string& text);

}  // namespace kernels::cli
