// libFuzzer target: what a Hub (or anything posing as one) sends back, as cli/hub/hub_protocol
// reads it: the refs and revision JSON answers, the Link and Retry-After headers, the
// X-Error-Code / X-Error-Message pair turned into an error, and the URLs of redirects and Link
// targets. Any bytes must give a value or an error, and what may be printed must be printable and
// never carry the token. Run by scripts/fuzz.sh.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hub_protocol.h"

namespace {

constexpr std::string_view kToken = "hf_FuzzSecretToken0123456789";

void must_be_printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) __builtin_trap();
  if (s.find(kToken) != std::string_view::npos) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace hub = kernels::cli::hub;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)hub::parse_refs(text, "fuzz/refs");
  if (auto sha = hub::parse_revision_sha(text, "fuzz/revision"); sha && sha->size() != 40)
    __builtin_trap();
  (void)hub::next_link(text);
  const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  if (auto wait = hub::parse_retry_after(text, now); wait && wait->count() < 0) __builtin_trap();

  must_be_printable(hub::printable_header_value(text, kToken));
  // The first line is the X-Error-Code, the whole input the message.
  const std::string_view first_line = text.substr(0, text.find('\n'));
  const hub::Headers headers{{"x-error-code", std::string(first_line)},
                             {"x-error-message", std::string(text)}};
  const long status = 400 + static_cast<long>(size % 200);
  const kernels::Error error = hub::http_error(status, headers, "fuzz/url", kToken);
  if (error.message().find(kToken) != std::string::npos) __builtin_trap();

  // A redirect or Link target against a base, then the redaction of what comes out.
  const std::string base(first_line);
  const std::string reference(
      text.substr(first_line.size() < text.size() ? first_line.size() + 1 : text.size()));
  if (auto url = hub::resolve_url(base, reference)) {
    (void)hub::url_origin(*url);
    (void)hub::redact_url(*url, "https://huggingface.co:443");
  }
  (void)hub::url_origin(text);
  (void)hub::redact_url(text, "https://huggingface.co:443");
  return 0;
}
