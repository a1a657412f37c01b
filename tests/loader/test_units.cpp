// Smaller pieces: image bounds checks, manifest parsing, the C ABI's edges.
#include <catch2/catch.hpp>

#include <cstring>

#include "bundle.h"  // loader/src
#include "kernels/kernels_loader.h"
#include "kernels/loader/driver.h"

using namespace kernels;
using namespace kernels::loader;

namespace {

template <class T>
void put(std::vector<std::uint8_t>& b, std::size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof v);
}

// A minimal ELF64 image with one PROGBITS section at [offset, offset+size).
std::vector<std::uint8_t> elf(std::uint64_t sec_offset, std::uint64_t sec_size) {
  std::vector<std::uint8_t> b(64 + 2 * 64 + 32, 0);
  b[0] = 0x7F, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 2, b[5] = 1;
  put<std::uint64_t>(b, 0x28, 64);  // e_shoff
  put<std::uint16_t>(b, 0x3A, 64);  // e_shentsize
  put<std::uint16_t>(b, 0x3C, 2);   // e_shnum (null section + one)
  const std::size_t sh = 64 + 64;
  put<std::uint32_t>(b, sh + 4, 1);  // SHT_PROGBITS
  put<std::uint64_t>(b, sh + 0x18, sec_offset);
  put<std::uint64_t>(b, sh + 0x20, sec_size);
  return b;
}

}  // namespace

TEST_CASE("image bounds: a consistent ELF passes", "[loader][image]") {
  const auto b = elf(192, 32);
  CHECK(check_image_bounds(b, "x").ok());
}

TEST_CASE("image bounds: an ELF section past the end is refused", "[loader][image]") {
  const auto b = elf(192, 33);
  auto r = check_image_bounds(b, "x");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::unsafe);
  CHECK(r.error().what.find("section 1") != std::string::npos);
}

TEST_CASE("image bounds: a truncated ELF section table is refused", "[loader][image]") {
  auto b = elf(192, 32);
  b.resize(150);
  CHECK_FALSE(check_image_bounds(b, "x").ok());
}

TEST_CASE("image bounds: a fatbin whose declared size exceeds the buffer is refused",
          "[loader][image]") {
  std::vector<std::uint8_t> b(64, 0);
  put<std::uint32_t>(b, 0, 0xBA55ED50u);
  put<std::uint16_t>(b, 4, 1);
  put<std::uint16_t>(b, 6, 16);
  put<std::uint64_t>(b, 8, 48);
  CHECK(check_image_bounds(b, "x").ok());
  put<std::uint64_t>(b, 8, 49);
  CHECK_FALSE(check_image_bounds(b, "x").ok());
}

TEST_CASE("image bounds: PTX must be NUL-terminated and empty images are refused",
          "[loader][image]") {
  const std::string ptx = ".version 8.0\n.target sm_80\n";
  std::vector<std::uint8_t> b(ptx.begin(), ptx.end());
  CHECK_FALSE(check_image_bounds(b, "x").ok());
  b.push_back(0);
  CHECK(check_image_bounds(b, "x").ok());
  CHECK_FALSE(check_image_bounds({}, "x").ok());
}

TEST_CASE("manifest: the kernels generator's manifest parses", "[loader][manifest]") {
  auto m = parse_bundle_manifest(R"({"format_version":1,"family":"fa3","params_abi":1,
      "arch":"sm90a","cuda":"13.0","kernels":[{"name":"k","head_dim":64,"head_dim_v":64,
      "dtype":"bf16","threads":128,"smem_bytes":32768,"block_m":128,"block_n":64}]})",
                                 "manifest.json");
  REQUIRE(m.ok());
  CHECK(m->family == "fa3");
  CHECK(m->params_abi == 1);
  REQUIRE(m->kernels.size() == 1);
  CHECK(m->kernels[0].smem_bytes == 32768);
  CHECK(m->kernels[0].block_n == 64);
}

TEST_CASE("manifest: malformed manifests are errors naming the file", "[loader][manifest]") {
  for (const char* text :
       {"", "[]",
        R"({"format_version":2,"family":"fa3","params_abi":1,"arch":"sm90a","kernels":[]})",
        R"({"format_version":1,"params_abi":1,"arch":"sm90a","kernels":[]})",
        R"({"format_version":1,"family":"fa3","params_abi":"1","arch":"sm90a","kernels":[]})",
        R"({"format_version":1,"family":"fa3","params_abi":1,"arch":"sm90a","kernels":[{}]})"}) {
    auto m = parse_bundle_manifest(text, "some/manifest.json");
    INFO(text);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().object == "some/manifest.json");
  }
}

// Found by fuzz_manifest: nlohmann's get<int>() of 1e300 is undefined behaviour (UBSan:
// "outside the range of representable values"), and get<uint32_t>() of -1 or 2^32 wraps.
TEST_CASE("manifest: numbers outside their type are malformed, not converted",
          "[loader][manifest]") {
  const std::string head = R"({"format_version":1,"family":"fa3","arch":"sm90a",)";
  for (const std::string tail :
       {R"("params_abi":1,"kernels":[{"name":"k","head_dim":1e300}]})",
        R"("params_abi":1,"kernels":[{"name":"k","threads":-1e300}]})",
        R"("params_abi":1,"kernels":[{"name":"k","smem_bytes":2147483648}]})",
        R"("params_abi":1,"kernels":[{"name":"k","block_m":64.5}]})",
        R"("params_abi":-1,"kernels":[]})", R"("params_abi":4294967297,"kernels":[]})",
        R"("params_abi":1e300,"kernels":[]})"}) {
    auto m = parse_bundle_manifest(head + tail, "some/manifest.json");
    INFO(tail);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().code == ErrorCode::lockfile_invalid);
    CHECK(m.error().what.find("must be an integer from") != std::string::npos);
  }
  auto edge = parse_bundle_manifest(head + R"("params_abi":4294967295,"kernels":[{"name":"k",
      "head_dim":2147483647,"threads":-2147483648}]})",
                                    "some/manifest.json");
  REQUIRE(edge.ok());
  CHECK(edge->params_abi == 4294967295u);
  CHECK(edge->kernels[0].head_dim == 2147483647);
  CHECK(edge->kernels[0].head_dim_v == 2147483647);
  CHECK(edge->kernels[0].threads == -2147483648);
}

TEST_CASE("C ABI: defaults mirror FA3's Python defaults", "[loader][c_abi]") {
  kl_varlen_args v;
  kernels_loader_varlen_args_init(&v);
  CHECK(v.struct_size == sizeof v);
  CHECK(v.ver == 3);
  CHECK(v.window_left == -1);
  CHECK(v.window_right == -1);
  CHECK(v.num_splits == 1);  // varlen default
  CHECK(v.pack_gqa == -1);
  CHECK(v.softmax_scale == 0.0);
  CHECK(v.q.data == nullptr);
  kl_kvcache_args k;
  kernels_loader_kvcache_args_init(&k);
  CHECK(k.num_splits == 0);  // kvcache default: heuristic
  CHECK(k.rotary_interleaved == 1);
  CHECK(kernels_loader_abi_version() == KERNELS_LOADER_ABI_VERSION);
}

TEST_CASE("C ABI: NULL arguments are errors, not crashes", "[loader][c_abi]") {
  CHECK(kernels_loader_flash_attn_varlen_func(nullptr, nullptr) == KL_ERR_INVALID_ARGUMENT);
  CHECK(std::string(kernels_loader_last_error()).find("args") != std::string::npos);
  CHECK(kernels_loader_flash_attn_with_kvcache(nullptr, nullptr) == KL_ERR_INVALID_ARGUMENT);
  kl_varlen_args v;
  kernels_loader_varlen_args_init(&v);
  CHECK(kernels_loader_varlen_workspace_size(&v, nullptr, nullptr) == KL_ERR_INVALID_ARGUMENT);
  CHECK(kernels_loader_device_source(0, 3, nullptr) == KL_ERR_INVALID_ARGUMENT);
  kl_source_info info{};  // struct_size 0: not initialised
  CHECK(kernels_loader_device_source(0, 3, &info) == KL_ERR_INVALID_ARGUMENT);
  CHECK(std::string(kernels_loader_last_error()).find("kernels_loader_source_info_init") !=
        std::string::npos);
}

TEST_CASE("C ABI: initialisation reports the machine's state with a status and a message",
          "[loader][c_abi]") {
  const int rc = kernels_loader_init(nullptr);
  if (rc == KL_OK) {
    kl_source_info info;
    kernels_loader_source_info_init(&info);
    REQUIRE(kernels_loader_device_source(0, 3, &info) == KL_OK);
    CHECK((info.source == KL_SOURCE_BUILTIN || info.source == KL_SOURCE_BUNDLE));
  } else {
    // No GPU (CI), or a build without built-in kernels.
    CHECK((rc == KL_ERR_NO_DEVICE || rc == KL_ERR_NO_VARIANT));
    CHECK(std::strlen(kernels_loader_last_error()) > 0);
    // Every later call reports the same failure instead of retrying or crashing.
    kl_varlen_args v;
    kernels_loader_varlen_args_init(&v);
    CHECK(kernels_loader_flash_attn_varlen_func(&v, nullptr) == rc);
  }
  kl_options other;
  kernels_loader_options_init(&other);
  other.force_builtin = 1;
  CHECK(kernels_loader_init(&other) == KL_ERR_INVALID_ARGUMENT);
}

TEST_CASE("C ABI: structs from another header version are adopted or refused before the driver",
          "[loader][c_abi]") {
  // A newer caller's struct: ours plus fields we do not know, laid out after ours.
  struct NewerArgs {
    kl_varlen_args known;
    std::int64_t added_field;
  };
  NewerArgs newer{};
  kernels_loader_varlen_args_init(&newer.known);
  newer.known.struct_size = sizeof(NewerArgs);
  // Unknown fields left at zero ("not given"): adopted, so the call gets as far as the machine
  // allows (no GPU here: the driver's status; with a GPU: argument validation of empty tensors).
  const int zero_tail = kernels_loader_flash_attn_varlen_func(&newer.known, nullptr);
  CHECK(std::string(kernels_loader_last_error()).find("struct_size") == std::string::npos);
#ifdef KERNELS_HAVE_BUILTIN_IMAGE
  CHECK((zero_tail == KL_ERR_NO_DEVICE || zero_tail == KL_ERR_INVALID_ARGUMENT));
#else
  // Built without nvcc (as scripts/sanitize.sh builds): no built-in kernels, so the loader
  // refuses to start before it looks for a driver.
  CHECK(zero_tail == KL_ERR_NO_VARIANT);
#endif
  // A field we do not know is set: refused, naming the byte, even without a GPU.
  newer.added_field = 7;
  CHECK(kernels_loader_flash_attn_varlen_func(&newer.known, nullptr) == KL_ERR_INVALID_ARGUMENT);
  const std::string why = kernels_loader_last_error();
  CHECK(why.find("kl_varlen_args.struct_size") != std::string::npos);
  CHECK(why.find("does not know") != std::string::npos);
  // Smaller than the first published layout: refused.
  kl_kvcache_args k;
  kernels_loader_kvcache_args_init(&k);
  k.struct_size = 64;
  std::size_t bytes = 0;
  CHECK(kernels_loader_kvcache_workspace_size(&k, nullptr, &bytes) == KL_ERR_INVALID_ARGUMENT);
  CHECK(std::string(kernels_loader_last_error()).find("smaller than any published layout") !=
        std::string::npos);
  kl_options o;
  kernels_loader_options_init(&o);
  o.struct_size = 8;
  CHECK(kernels_loader_init(&o) == KL_ERR_INVALID_ARGUMENT);
}
