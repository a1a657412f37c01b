// The two HubClient back ends behind HubClient::create (HTTP and file:// mirror), and the
// checks they share. Internal to kernels_hub.
#pragma once

#include <memory>

#include "hub_client.h"

namespace kernels::cli::hub {

Result<std::unique_ptr<HubClient>> make_http_hub_client(HubOptions options);
// endpoint: "file:///dir"
Result<std::unique_ptr<HubClient>> make_mirror_hub_client(HubOptions options);

Error offline_error(std::string object);
std::string download_object(const DownloadRequest& request);
// Checks a request's fields before anything is fetched.
Result<void> check_download_request(const DownloadRequest& request);

}  // namespace kernels::cli::hub
