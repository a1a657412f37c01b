// The synthetic hash vectors (tests/fixtures/hf-kernels/synthetic/lock-hash-vectors.json):
// file contents, the Hub tree listing and the expected locks, loaded once per test.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/lockfile/repo_tree.h"
#include "support.h"

namespace kernels::test {

inline const nlohmann::json& hash_vectors() {
  static const nlohmann::json j = nlohmann::json::parse(
      slurp(hf_fixtures() / "synthetic" / "lock-hash-vectors.json"));
  return j;
}

inline std::string base64_decode(const std::string& in) {
  static const std::string abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned v = 0;
  int bits = -8;
  for (char c : in) {
    if (c == '=') break;
    const auto p = abc.find(c);
    if (p == std::string::npos) continue;
    v = (v << 6) | static_cast<unsigned>(p);
    bits += 6;
    if (bits >= 0) {
      out += static_cast<char>((v >> bits) & 0xFF);
      bits -= 8;
    }
  }
  return out;
}

// repo path -> file bytes
inline std::map<std::string, std::string> vector_files() {
  std::map<std::string, std::string> out;
  for (const auto& [path, info] : hash_vectors()["repo_files"].items()) {
    out[path] = base64_decode(info["content_b64"].get<std::string>());
  }
  return out;
}

}  // namespace kernels::test
