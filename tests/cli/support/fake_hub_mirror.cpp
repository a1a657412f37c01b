// The fake Hub and mirror directories (the layout in cli/hub/hub_client.h): writing one from the
// fake repos, and loading one into them.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fake_hub_state.h"

namespace kernels::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace detail;

Result<void> write_file(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return make_error(ErrorCode::io, "cannot write mirror file", path.string());
  return ok();
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, "cannot read mirror file", path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<void> FakeHub::write_mirror(const fs::path& dir) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  for (const auto& [id, repo] : state_->repos) {
    const std::string org = id.substr(0, id.find('/'));
    if (std::string overview = state_->overview_of(org); !overview.empty()) {
      if (auto r = write_file(dir / "api" / "organizations" / org / "overview", overview); !r)
        return r;
    }
    auto api = dir / "api" / "kernels" / id;
    if (auto r = write_file(api / "refs", refs_json(repo)); !r) return r;
    auto revision = [&](const std::string& name, const std::string& commit) {
      return write_file(api / "revision" / name, json{{"id", id}, {"sha", commit}}.dump());
    };
    for (const auto& [name, commit] : repo.branches)
      if (auto r = revision(name, commit); !r) return r;
    for (const auto& [name, commit] : repo.tags)
      if (auto r = revision(name, commit); !r) return r;
    for (const auto& [sha, commit] : repo.commits) {
      if (auto r = revision(sha, sha); !r) return r;
      if (auto r = write_file(api / "tree" / sha, serialize_tree_listing(tree_of(commit))); !r)
        return r;
      for (const auto& f : commit.files) {
        if (auto r = write_file(dir / "kernels" / id / "resolve" / sha / f.path, *f.content); !r)
          return r;
      }
    }
  }
  return ok();
}

Result<void> FakeHub::load_mirror(const fs::path& dir) {
  std::error_code ec;
  auto api_root = dir / "api" / "kernels";
  if (!fs::is_directory(api_root, ec)) {
    return make_error(ErrorCode::usage, "not a mirror (no api/kernels/)", dir.string());
  }
  std::map<std::string, RepoState> loaded;
  std::map<std::string, std::shared_ptr<const std::string>> blobs;
  for (const auto& org : fs::directory_iterator(api_root, ec)) {
    for (const auto& name : fs::directory_iterator(org.path(), ec)) {
      std::string id = org.path().filename().string() + "/" + name.path().filename().string();
      RepoState repo;
      auto refs_text = read_file(name.path() / "refs");
      if (!refs_text) return std::move(refs_text).error();
      auto refs = json::parse(*refs_text, nullptr, false);
      if (refs.is_discarded()) return make_error(ErrorCode::lockfile_invalid, "bad refs JSON", id);
      for (const char* key : {"branches", "tags"}) {
        for (const auto& r : refs.value(key, json::array())) {
          auto entry = std::make_pair(r.value("name", ""), r.value("targetCommit", ""));
          (std::string(key) == "branches" ? repo.branches : repo.tags).push_back(entry);
        }
      }
      for (const auto& tree_file : fs::directory_iterator(name.path() / "tree", ec)) {
        auto sha = tree_file.path().filename().string();
        auto text = read_file(tree_file.path());
        if (!text) return std::move(text).error();
        auto tree = parse_tree_listing(*text, tree_file.path().string());
        if (!tree) return std::move(tree).error();
        Commit commit;
        commit.sha = sha;
        for (const auto& e : *tree) {
          if (!e.is_file) continue;
          auto bytes = read_file(dir / "kernels" / id / "resolve" / sha / e.path);
          if (!bytes) return std::move(bytes).error();
          auto stored = store(FakeFile{e.path, std::move(*bytes), e.lfs.has_value()});
          if (stored.lfs) blobs[stored.sha256] = stored.content;
          commit.files.push_back(std::move(stored));
        }
        repo.commits[sha] = std::move(commit);
      }
      loaded[id] = std::move(repo);
    }
  }
  std::map<std::string, std::optional<bool>> trust;
  for (const auto& org : fs::directory_iterator(dir / "api" / "organizations", ec)) {
    auto text = read_file(org.path() / "overview");
    if (!text) continue;
    auto doc = json::parse(*text, nullptr, false);
    if (doc.is_object())
      trust[org.path().filename().string()] = doc.value("trustedKernelPublisher", false);
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  for (auto& [org, t] : trust) state_->org_trust[org] = t;
  for (auto& [id, repo] : loaded) state_->repos[id] = std::move(repo);
  for (auto& [sha, blob] : blobs) state_->blobs[sha] = blob;
  return ok();
}

}  // namespace kernels::testing
