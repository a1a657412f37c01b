// `kernels trust-root refresh [--url URL] [--tuf-root FILE]`: the TUF client workflow
// (cli/sigstore/include/kernels/sigstore/tuf.h) against Sigstore's TUF repository, which stores the
// newest verified trusted_root.json in the cache for verify-signature and download
// --require-signatures. Offline (--offline, HF_HUB_OFFLINE) or when the repository cannot be
// reached, the last verified trusted root stays in use and the command says so once (exit 0).
// `kernels trust-root show`: which trusted root verification uses now.
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "http_engine.h"
#include "kernels/sigstore/trusted_root.h"
#include "kernels/sigstore/tuf.h"

namespace kernels::cli {
namespace {

struct TrustRootArgs {
  std::string url;
  std::string tuf_root;
};

// Takes at most max + 1 bytes, so the client can name an oversized file ("TUF length") itself
// without downloading all of it.
class BoundedSink final : public hub::BodySink {
 public:
  explicit BoundedSink(std::size_t max) : max_(max) {}
  Result<std::uint64_t> begin_attempt() override {
    body_.clear();
    return std::uint64_t{0};
  }
  Result<void> on_response(long, const hub::Headers&) override {
    body_.clear();
    return ok();
  }
  Result<void> write(std::span<const std::uint8_t> bytes) override {
    std::size_t room = max_ + 1 - body_.size();
    body_.append(reinterpret_cast<const char*>(bytes.data()), std::min(room, bytes.size()));
    if (body_.size() > max_) {
      too_big_ = true;
      return make_error(ErrorCode::integrity_mismatch, "larger than allowed");
    }
    return ok();
  }
  Result<void> finish() override { return ok(); }
  std::uint64_t bytes_held() const override { return body_.size(); }
  bool too_big() const { return too_big_; }
  std::string take() { return std::move(body_); }

 private:
  std::size_t max_;
  std::string body_;
  bool too_big_ = false;
};

std::string describe_source(CommandContext& ctx) {
  if (const char* env = std::getenv("KERNELS_SIGSTORE_TRUSTED_ROOT"); env && *env)
    return std::string("KERNELS_SIGSTORE_TRUSTED_ROOT=") + env;
  if (auto cached = sigstore::tuf_cached_trusted_root(ctx.cache().root(),
                                                      sigstore::default_tuf_url()))
    return cached->string();
  return "built-in public-good trusted root";
}

Result<void> run_refresh(CommandContext& ctx, const TrustRootArgs& args) {
  const Console& console = ctx.console();
  std::string url = args.url.empty() ? sigstore::default_tuf_url() : args.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0)
    return make_error(ErrorCode::usage, "--url must be an http(s) URL", url,
                      "e.g. --url " + std::string(sigstore::kPublicGoodTufUrl));
  std::optional<std::string> bootstrap;
  if (!args.tuf_root.empty()) {
    std::ifstream in(args.tuf_root, std::ios::binary);
    std::ostringstream s;
    if (in) s << in.rdbuf();
    if (!in || in.bad())
      return make_error(ErrorCode::io, "cannot read the TUF root given with --tuf-root",
                        args.tuf_root, "check the path");
    bootstrap = s.str();
  }
  const std::filesystem::path cache_root = ctx.cache().root();
  auto kept = [&](const std::string& why) -> Result<void> {
    // Once, on stderr: verification goes on with what it had.
    const std::string using_root = describe_source(ctx);
    console.warn("trust root not refreshed (" + why + "); verification keeps using " + using_root);
    if (console.json())
      console.set_result(
          {{"url", url}, {"refreshed", false}, {"reason", why}, {"trusted_root", using_root}});
    return ok();
  };
  if (ctx.offline()) return kept("offline");

  Result<HubOptions> options = hub_options_from_env({ctx.offline(), 1});
  if (!options) return options.error();
  // The TUF repository is the engine's endpoint here (HF_ENDPOINT may be a file:// mirror); it is
  // public, so no Hub token goes there.
  options->endpoint = url;
  options->token.reset();
  options->max_retries = std::min(options->max_retries, 2);
  // Retries are shown with -v only: without an answer the one line below says what happened.
  options->log = [&console](HubOptions::LogLevel, std::string_view line) { console.debug(line); };
  Result<std::unique_ptr<hub::HttpEngine>> engine = hub::HttpEngine::create(*options);
  if (!engine) return engine.error();

  bool reached = false;  // some answer came from the repository
  sigstore::TufFetcher fetch = [&](const std::string& file_url,
                                   std::size_t max_bytes) -> Result<std::optional<std::string>> {
    BoundedSink sink(max_bytes);
    hub::HttpRequest request;
    request.url = file_url;
    request.sink = &sink;
    request.object = file_url;
    request.expected_bytes = max_bytes;
    hub::HttpOutcome outcome = (*engine)->get(std::move(request));
    if (outcome.status != 0) reached = true;
    if (sink.too_big()) return std::optional<std::string>(sink.take());
    if (outcome.status == 403 || outcome.status == 404) return std::optional<std::string>();
    if (!outcome.result) return outcome.result.error();
    return std::optional<std::string>(sink.take());
  };
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  std::optional<std::string_view> boot;
  if (bootstrap) boot = *bootstrap;
  Result<sigstore::TufRefreshed> done = sigstore::tuf_refresh(cache_root, url, boot, fetch, now);
  if (!done) {
    const Error& e = done.error();
    // A download that failed (no network, DNS, refused, an HTTP error after the retries, a file
    // missing): keep the last trusted root. Metadata that does not verify is an error: its refusal
    // names the check.
    if (e.code == ErrorCode::network || e.code == ErrorCode::http_permanent)
      return kept((reached ? "fetch failed from " : "cannot reach ") + url + ": " + e.what);
    return std::move(done).error();
  }
  const sigstore::TufRefreshed& r = *done;
  if (console.json()) {
    console.set_result({{"url", url},
                        {"refreshed", true},
                        {"root_version", r.root_version},
                        {"root_versions_fetched", r.root_versions_fetched},
                        {"timestamp_version", r.timestamp_version},
                        {"snapshot_version", r.snapshot_version},
                        {"targets_version", r.targets_version},
                        {"trusted_root", r.trusted_root_path.string()},
                        {"trusted_root_sha256", r.trusted_root_sha256},
                        {"changed", r.trusted_root_changed}});
  } else {
    console.out(
        "Trusted root from " + url + " verified (TUF root v" + std::to_string(r.root_version) +
        ", timestamp v" + std::to_string(r.timestamp_version) + ", snapshot v" +
        std::to_string(r.snapshot_version) + ", targets v" + std::to_string(r.targets_version) +
        "): " + (r.trusted_root_changed ? "updated" : "unchanged") + ", " +
        r.trusted_root_path.string() + " (sha256 " + r.trusted_root_sha256 + ")\n");
  }
  return ok();
}

Result<void> run_show(CommandContext& ctx) {
  const std::string source = describe_source(ctx);
  Result<sigstore::TrustedRoot> root = sigstore::load_trusted_root(std::nullopt,
                                                                   ctx.cache().root());
  if (!root) return root.error();
  if (ctx.console().json())
    ctx.console().set_result({{"url", sigstore::default_tuf_url()}, {"trusted_root", source}});
  else ctx.console().out(source + "\n");
  return ok();
}

}  // namespace

void add_trust_root_command(CLI::App& app, CommandFn& chosen) {
  CLI::App* cmd = app.add_subcommand(
      "trust-root", "Refresh or show the Sigstore trusted root that signatures are verified with");
  cmd->require_subcommand(1);
  auto args = std::make_shared<TrustRootArgs>();
  CLI::App* refresh = cmd->add_subcommand(
      "refresh",
      "Fetch the newest trusted_root.json over TUF, verify it, and store it in the cache");
  refresh
      ->add_option("--url", args->url,
                   "TUF repository (default: $KERNELS_SIGSTORE_TUF_URL, else "
                   "https://tuf-repo-cdn.sigstore.dev)")
      ->type_name("URL");
  refresh
      ->add_option("--tuf-root", args->tuf_root,
                   "The repository's first trusted root.json (needed once for a repository "
                   "other than the public-good one)")
      ->type_name("FILE");
  refresh->callback([args, &chosen] {
    chosen = [args](CommandContext& ctx) { return run_refresh(ctx, *args); };
  });
  cmd->add_subcommand("show", "Print which trusted root verification uses now")
      ->callback([&chosen] { chosen = [](CommandContext& ctx) { return run_show(ctx); }; });
}

}  // namespace kernels::cli
