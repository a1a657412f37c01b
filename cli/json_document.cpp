#include "json_document.h"

namespace kernels::cli {
namespace {

nlohmann::ordered_json envelope(std::string_view command, bool ok) {
  nlohmann::ordered_json doc;
  doc["schema"] = kJsonSchemaVersion;
  doc["ok"] = ok;
  doc["command"] = command.empty() ? nlohmann::ordered_json(nullptr)
                                   : nlohmann::ordered_json(command);
  return doc;
}

std::string finish(nlohmann::ordered_json doc, const nlohmann::json& fields) {
  if (fields.is_object()) {
    // The envelope's keys are the contract's: a command field of the same name never replaces them.
    for (const auto& [key, value] : fields.items()) {
      if (!doc.contains(key)) doc[key] = nlohmann::ordered_json::parse(value.dump());
    }
  }
  return doc.dump(2) + "\n";
}

}  // namespace

nlohmann::json text_or_null(const std::string& text) {
  return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
}

std::string json_success(std::string_view command, const nlohmann::json& fields) {
  return finish(envelope(command, true), fields);
}

std::string json_failure(std::string_view command, const Error& error, int exit,
                         const nlohmann::json& fields, std::string_view code_name) {
  nlohmann::ordered_json doc = envelope(command, false);
  nlohmann::ordered_json e;
  e["code"] = code_name.empty() ? std::string(error_code_name(error.code)) : std::string(code_name);
  e["exit"] = exit;
  e["message"] = error.what;
  e["hint"] = error.hint.empty() ? nlohmann::ordered_json(nullptr)
                                 : nlohmann::ordered_json(error.hint);
  e["object"] = error.object.empty() ? nlohmann::ordered_json(nullptr)
                                     : nlohmann::ordered_json(error.object);
  doc["error"] = std::move(e);
  return finish(std::move(doc), fields);
}

}  // namespace kernels::cli
