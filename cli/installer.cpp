#include "installer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <map>
#include <optional>
#include <system_error>

#include "hub/interrupt.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/env.h"
#include "kernels/lockfile/repo_id.h"

namespace kernels::cli {
namespace {

bool regular_file_of_size(const std::filesystem::path& path, std::uint64_t size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;  // follows the snapshot symlink
  return S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == size;
}

// Blobs are not fsynced before their rename unless KERNELS_FSYNC=1, as cargo, uv and
// huggingface_hub do: every blob is verified before it becomes visible, the rename makes a
// process crash harmless, and a blob torn by a power loss is caught by `kernels verify` and by
// the loader's hash check, which reads every byte it hands to the driver. Files trusted without
// a hash (kernels.lock, refs, trees) are always written durably (write_atomic). Forcing 1 GiB to
// this project's CI disk costs ~6 s, the whole difference in the cold-download benchmark.
bool blob_fsync_enabled() {
  static const bool enabled = blob_fsync_requested();
  return enabled;
}

// Starts the disk writeback of each file as soon as its transfer ends (sync_file_range does not
// wait), so the fsync at publish time finds most bytes already on disk instead of the whole
// batch; forwards everything to the console's progress bar, if any.
class EarlyWriteback final : public ProgressSink {
 public:
  explicit EarlyWriteback(ProgressSink* inner) : inner_(inner) {}
  void on_start(std::uint64_t total_bytes, std::size_t files) override {
    if (inner_) inner_->on_start(total_bytes, files);
  }
  void on_bytes(std::uint64_t bytes_done) override {
    if (inner_) inner_->on_bytes(bytes_done);
  }
  void on_file_done(const DownloadRequest& request, const Result<void>& result) override {
    if (result.ok() && blob_fsync_enabled() && request.temp_dir) {
      int fd = request.temp_dir->open_file(request.temp_path.filename().string(), O_RDONLY);
      if (fd >= 0) {
        ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        ::close(fd);
      }
    }
    if (inner_) inner_->on_file_done(request, result);
  }

 private:
  ProgressSink* inner_;
};

// Moves a verified download into place. Unlike publish_file(), the file is fsynced first only
// with KERNELS_FSYNC=1 (see blob_fsync_enabled), and the directory is not fsynced per file: the
// caller makes the renames durable with one fsync_directory() per batch.
Result<void> publish_without_directory_sync(const CacheDir& blobs,
                                            const std::filesystem::path& temp,
                                            const std::filesystem::path& final_path) {
  int fd = blob_fsync_enabled() ? blobs.open_file(temp.filename().string(), O_RDONLY) : -2;
  if (fd == -1 || (fd >= 0 && ::fsync(fd) != 0)) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    return make_error(ErrorCode::io,
                      std::string("cannot make the download durable: ") + std::strerror(err),
                      temp.string(), "check the disk (space, permissions)");
  }
  if (fd >= 0) ::close(fd);
  // Within blobs/, opened from the cache root without following links (cache_dir.h).
  if (Result<void> moved = blobs.rename(temp.filename().string(), final_path.filename().string());
      !moved) {
    Error e = moved.error();
    e.what = "cannot move the verified download into place: " + e.what;
    e.hint = "check that the cache is writable";
    return e;
  }
  return ok();
}

// The partial file of an interrupted transfer, kept where the next run resumes it: true when
// there were bytes to keep (less than the whole file: a full one was about to be verified).
// Within blobs/, by name relative to its verified fd, as every other use of the temp file.
bool keep_resumable(const CacheDir& blobs, const DownloadRequest& request,
                    const std::filesystem::path& blob) {
  struct stat st {};
  if (::fstatat(blobs.fd(), request.temp_path.filename().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      !S_ISREG(st.st_mode) || st.st_size == 0 ||
      static_cast<std::uint64_t>(st.st_size) >= request.size) {
    return false;
  }
  return blobs
      .rename(request.temp_path.filename().string(),
              resumable_partial_path(blob).filename().string())
      .ok();
}

// Far below the usual `ulimit -n` of 1024, far above any --jobs: transfers stay parallel.
constexpr std::size_t kMaxHeldBlobLocks = 128;

struct BlobJob {
  const TreeEntry* entry = nullptr;  // first entry with this etag
  std::filesystem::path blob;
  std::filesystem::path lock;
  std::optional<BlobLock> held;
};

// Fetches `jobs` (all locked by us or lock-free) in one parallel batch and publishes each.
void fetch_batch(const CacheLayout& cache, const std::string& repo_id, const std::string& commit,
                 std::vector<BlobJob*>& jobs, HubClient& hub, const Console& console,
                 InstallReport& report, std::map<std::string, Error>& failed) {
  if (jobs.empty()) return;
  std::vector<DownloadRequest> requests;
  requests.reserve(jobs.size());
  for (BlobJob* job : jobs) {
    DownloadRequest r;
    r.repo_id = repo_id;
    r.revision = commit;
    r.path = job->entry->path;
    r.digest = job->entry->digest();
    r.size = job->entry->content_size();
    r.temp_path = unique_temp_path(job->blob);
    requests.push_back(std::move(r));
  }
  // blobs/ is reached from the cache root without following links; a link planted on the way
  // fails every file of the batch (exit 11), before a byte is fetched.
  Result<CacheDir> blobs = CacheDir::open_below(cache.root(), cache.blobs_dir(repo_id), true);
  if (!blobs) {
    for (BlobJob* job : jobs) {
      failed.emplace(job->entry->digest().hex, blobs.error());
      job->held.reset();
    }
    return;
  }
  for (DownloadRequest& r : requests) r.temp_dir = &*blobs;
  // An interrupted run's bytes become this run's temp file, which the transfer then resumes. We
  // hold the blob lock (or locking is off, and rename is atomic: one process gets the file).
  std::size_t resumed = 0;
  std::uint64_t resumed_bytes = 0;
  std::vector<bool> was_resumed(jobs.size(), false);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const std::string partial = resumable_partial_path(jobs[i]->blob).filename().string();
    struct stat st {};
    if (::fstatat(blobs->fd(), partial.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    if (!blobs->rename(partial, requests[i].temp_path.filename().string())) continue;
    ++resumed;
    resumed_bytes += static_cast<std::uint64_t>(st.st_size);
    was_resumed[i] = true;
  }
  if (resumed > 0) {
    console.info("Resuming " + std::to_string(resumed) + " partial download" +
                 (resumed == 1 ? "" : "s") + " of " + repo_id + " (" + format_bytes(resumed_bytes) +
                 " already here)");
  }
  auto progress = console.progress("Downloading " + repo_id);  // the client reports on_start
  EarlyWriteback writeback(progress.get());
  std::vector<Result<void>> results = hub.download(requests, &writeback);
  // A kept prefix that is not the file's (torn by a power loss, or a foreign partial file) fails
  // the whole file's digest: such a file is fetched once more, from its first byte.
  std::vector<std::size_t> again;
  std::vector<DownloadRequest> again_requests;
  for (std::size_t i = 0; i < results.size() && i < jobs.size(); ++i) {
    if (!was_resumed[i] || results[i].ok() ||
        results[i].error().code != ErrorCode::integrity_mismatch || hub::interrupted()) {
      continue;
    }
    console.debug("the kept part of " + repo_id + "/" + requests[i].path +
                  " was not the file's; fetching it whole");
    blobs->remove(requests[i].temp_path.filename().string());
    again.push_back(i);
    again_requests.push_back(requests[i]);
  }
  if (!again.empty()) {
    std::vector<Result<void>> retried = hub.download(again_requests, &writeback);
    for (std::size_t k = 0; k < again.size() && k < retried.size(); ++k)
      results[again[k]] = retried[k];
  }
  progress.reset();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const DownloadRequest& r = requests[i];
    Result<void> result = i < results.size()
                              ? results[i]
                              : Result<void>(make_error(ErrorCode::internal,
                                                        "the Hub client returned no result",
                                                        r.path));
    if (result.ok()) result = publish_without_directory_sync(*blobs, r.temp_path, jobs[i]->blob);
    if (!result.ok()) {
      if (!hub::interrupted() || !keep_resumable(*blobs, r, jobs[i]->blob)) {
        blobs->remove(r.temp_path.filename().string());
      }
      failed.emplace(jobs[i]->entry->digest().hex, result.error());
    } else {
      ++report.fetched;
      report.bytes_fetched += r.size;
      console.debug("fetched " + repo_id + "/" + r.path + " (" + format_bytes(r.size) + ")");
    }
    jobs[i]->held.reset();  // release the blob lock as soon as the blob is published
  }
  // One directory fsync for the whole batch instead of one per blob (each forces a journal
  // commit: 300 of them cost seconds). Nothing refers to these blobs until the snapshot links
  // are made after this returns, so a crash before it loses only unreferenced blobs.
  if (report.fetched > 0) {
    if (Result<void> synced = fsync_directory(cache.blobs_dir(repo_id)); !synced) {
      for (BlobJob* job : jobs) failed.emplace(job->entry->digest().hex, synced.error());
    }
  }
}

// Fetches `jobs` under their blob locks. First pass: blobs nobody else is fetching. Second pass:
// wait (bounded) for the rest, and fetch only what the other process did not publish.
void fetch_locked(const CacheLayout& cache, const std::string& repo_id, const std::string& commit,
                  const std::vector<BlobJob*>& jobs, HubClient& hub, const Console& console,
                  const BlobLockPolicy& locks, InstallReport& report,
                  std::map<std::string, Error>& failed) {
  std::vector<BlobJob*> mine, waiting;
  for (BlobJob* job : jobs) {
    job->held = BlobLock::try_acquire(job->lock, locks);
    if (!job->held) {
      waiting.push_back(job);
    } else if (regular_file_of_size(job->blob, job->entry->content_size())) {
      job->held.reset();
    } else {
      mine.push_back(job);
    }
  }
  fetch_batch(cache, repo_id, commit, mine, hub, console, report, failed);
  std::vector<BlobJob*> still_missing;
  for (BlobJob* job : waiting) {
    Result<BlobLock> lock = BlobLock::acquire(job->lock, locks, [&](const std::string& holder) {
      // Once per run: a download waiting on many blobs of another one is one wait to the user.
      static bool announced = false;
      if (announced) return;
      announced = true;
      char limit[32];
      std::snprintf(limit, sizeof limit, "%g s",
                    static_cast<double>(locks.timeout.count()) / 1000.0);
      console.info("Blocking: waiting for the cache lock held by " + holder + " (" +
                   job->lock.string() + "), at most " + limit + " (KERNELS_LOCK_TIMEOUT)");
    });
    if (!lock) {
      failed.emplace(job->entry->digest().hex, lock.error());
      continue;
    }
    job->held = std::move(*lock);
    if (regular_file_of_size(job->blob, job->entry->content_size())) {
      job->held.reset();
    } else {
      still_missing.push_back(job);
    }
  }
  fetch_batch(cache, repo_id, commit, still_missing, hub, console, report, failed);
}

}  // namespace

std::filesystem::path resumable_partial_path(const std::filesystem::path& blob) {
  std::filesystem::path out = blob;
  out += ".incomplete";
  return out;
}

bool blob_fsync_requested(const EnvLookup& env) { return env_truthy(env, "KERNELS_FSYNC"); }

bool snapshot_file_present(const CacheLayout& cache, const std::string& repo_id,
                           const std::string& commit, const TreeEntry& entry) {
  return regular_file_of_size(cache.snapshot_file(repo_id, commit, entry.path),
                              entry.content_size());
}

InstallReport install_files(const CacheLayout& cache, const std::string& repo_id,
                            const std::string& commit, const std::vector<TreeEntry>& files,
                            const HubAccess& hub, const Console& console,
                            const BlobLockPolicy& locks, const FileCheck& check) {
  InstallReport report;
  report.files = files.size();
  // Checked once (callers pass ids from the lock, which are valid); the per-file cache paths
  // below take the RepoId without checking it again.
  const std::optional<RepoId> repo = RepoId::parse(repo_id);
  if (!repo) {
    report.errors.push_back(CacheLayout::check_names(repo_id).error());
    return report;
  }
  std::vector<const TreeEntry*> to_link;
  std::map<std::string, BlobJob> jobs;  // by etag: two paths with one content share a blob
  for (const TreeEntry& entry : files) {
    if (!entry.is_file) continue;
    const auto snapshot = cache.snapshot_file(*repo, commit, entry.path);
    if (regular_file_of_size(snapshot, entry.content_size())) {
      ++report.already_cached;
      continue;
    }
    to_link.push_back(&entry);
    std::string etag = entry.digest().hex;
    if (jobs.count(etag)) continue;
    std::filesystem::path blob = cache.blob_path(*repo, etag);
    if (regular_file_of_size(blob, entry.content_size())) continue;
    BlobJob job;
    job.entry = &entry;
    job.blob = blob;
    job.lock = cache.lock_path(*repo, etag);
    jobs.emplace(etag, std::move(job));
  }

  std::map<std::string, Error> failed;
  std::optional<Error> no_hub;  // one error for all the files it stops, not one per file
  if (!jobs.empty()) {
    Result<HubClient*> client = hub();
    if (!client) {
      no_hub = client.error();
    } else {
      // Blob locks are taken a bounded number at a time: one open lock file per blob of a
      // 1500-file repo would exceed the usual `ulimit -n` of 1024 before any transfer starts.
      std::vector<BlobJob*> all;
      all.reserve(jobs.size());
      for (auto& [etag, job] : jobs) all.push_back(&job);
      for (std::size_t begin = 0; begin < all.size(); begin += kMaxHeldBlobLocks) {
        const std::size_t end = std::min(all.size(), begin + kMaxHeldBlobLocks);
        std::vector<BlobJob*> chunk(all.begin() + static_cast<std::ptrdiff_t>(begin),
                                    all.begin() + static_cast<std::ptrdiff_t>(end));
        fetch_locked(cache, repo_id, commit, chunk, **client, console, locks, report, failed);
      }
    }
  }

  if (no_hub) report.errors.push_back(*no_hub);
  for (const TreeEntry* entry : to_link) {
    std::string etag = entry->digest().hex;
    if (no_hub && jobs.count(etag)) continue;
    if (auto it = failed.find(etag); it != failed.end()) {
      Error e = it->second;
      if (e.object.empty()) e.object = repo_id + "/" + entry->path;
      report.errors.push_back(std::move(e));
      continue;
    }
    if (check) {
      if (Result<void> checked = check(*entry, cache.blob_path(*repo, etag)); !checked) {
        report.errors.push_back(checked.error());
        continue;
      }
    }
    Result<void> linked = cache.link_snapshot_file(*repo, commit, entry->path, etag);
    if (!linked) {
      report.errors.push_back(linked.error());
    } else {
      ++report.linked;
    }
  }
  return report;
}

}  // namespace kernels::cli
