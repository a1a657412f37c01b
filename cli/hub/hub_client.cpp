#include "hub_client.h"

#include <charconv>

#include "hub_backends.h"
#include "hub_protocol.h"

namespace kernels::cli {

std::map<int, std::string> RepoRefs::versions() const {
  std::map<int, std::string> out;
  for (const auto& branch : branches) {
    std::string_view name = branch.name;
    if (name.size() < 2 || name[0] != 'v') continue;
    int n = 0;
    auto digits = name.substr(1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || p != digits.data() + digits.size()) continue;
    out[n] = branch.commit;
  }
  return out;
}

Result<std::unique_ptr<HubClient>> HubClient::create(HubOptions options) {
  while (options.endpoint.size() > 1 && options.endpoint.back() == '/') options.endpoint.pop_back();
  if (options.endpoint.rfind("file://", 0) == 0)
    return hub::make_mirror_hub_client(std::move(options));
  return hub::make_http_hub_client(std::move(options));
}

namespace hub {

Error offline_error(std::string object) {
  return make_error(ErrorCode::offline_not_cached, "offline mode: the Hub is not contacted",
                    std::move(object),
                    "unset HF_HUB_OFFLINE (or drop --offline), or download while online first");
}

std::string download_object(const DownloadRequest& request) {
  return request.repo_id + "@" + request.revision + ": " + request.path;
}

Result<void> check_download_request(const DownloadRequest& request) {
  if (auto r = check_repo_id(request.repo_id); !r) return r;
  if (auto r = check_revision(request.revision); !r) return r;
  if (!is_safe_repo_path(request.path)) {
    return make_error(ErrorCode::usage, "unsafe repo path", request.path,
                      "paths are relative, without '..', '.', empty components or backslashes");
  }
  if (request.temp_path.empty()) {
    return make_error(ErrorCode::internal, "download request without a temp path",
                      download_object(request));
  }
  if ((request.digest.kind == FileDigest::Kind::sha256 && !is_lower_hex(request.digest.hex, 64)) ||
      (request.digest.kind == FileDigest::Kind::git_sha1 &&
       !is_lower_hex(request.digest.hex, 40))) {
    return make_error(ErrorCode::usage, "malformed expected digest \"" + request.digest.hex + "\"",
                      download_object(request));
  }
  return ok();
}

}  // namespace hub
}  // namespace kernels::cli
