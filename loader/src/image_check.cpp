// Bounds checks on a device-code image before the driver sees it. cuLibraryLoadData takes no
// length: the driver trusts the sizes written inside the image. The bytes were already matched
// against the lock, so these checks defend against a well-signed but malformed publish.
#include <cstring>
#include <string>

#include "kernels/loader/driver.h"

namespace kernels::loader {
namespace {

template <class T>
T read_le(std::span<const std::uint8_t> b, std::size_t off) {
  T v{};
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;  // little-endian hosts only, like the images themselves
}

Error bad_image(std::string_view label, std::string what) {
  return make_error(ErrorCode::unsafe, std::move(what), std::string(label),
                    "the bundle is malformed; re-publish it, or set KERNELS_USE_BUILTIN=1");
}

constexpr std::uint32_t kFatbinMagic = 0xBA55ED50u;

Result<void> check_elf(std::span<const std::uint8_t> b, std::string_view label) {
  if (b.size() < 64) return bad_image(label, "ELF image shorter than its header");
  if (b[4] != 2) return bad_image(label, "ELF image is not 64-bit");
  if (b[5] != 1) return bad_image(label, "ELF image is not little-endian");
  const auto shoff = read_le<std::uint64_t>(b, 0x28);
  const auto shentsize = read_le<std::uint16_t>(b, 0x3A);
  const auto shnum = read_le<std::uint16_t>(b, 0x3C);
  const auto phoff = read_le<std::uint64_t>(b, 0x20);
  const auto phentsize = read_le<std::uint16_t>(b, 0x36);
  const auto phnum = read_le<std::uint16_t>(b, 0x38);
  const std::uint64_t size = b.size();
  if (shnum != 0 && shentsize < 64) return bad_image(label, "ELF section header entries too small");
  if (shoff > size || std::uint64_t{shnum} * shentsize > size - shoff)
    return bad_image(label, "ELF section header table lies outside the image");
  if (phnum != 0 && (phoff > size || std::uint64_t{phnum} * phentsize > size - phoff))
    return bad_image(label, "ELF program header table lies outside the image");
  for (std::uint16_t i = 0; i < shnum; ++i) {
    const std::uint64_t sh = shoff + std::uint64_t{i} * shentsize;
    const auto type = read_le<std::uint32_t>(b, sh + 4);
    const auto offset = read_le<std::uint64_t>(b, sh + 0x18);
    const auto sec_size = read_le<std::uint64_t>(b, sh + 0x20);
    constexpr std::uint32_t kNoBits = 8;
    if (type == kNoBits || type == 0) continue;
    if (offset > size || sec_size > size - offset)
      return bad_image(label, "ELF section " + std::to_string(i) + " lies outside the image");
  }
  return ok();
}

Result<void> check_fatbin(std::span<const std::uint8_t> b, std::string_view label) {
  // Header: u32 magic, u16 version, u16 header size, u64 size of what follows the header.
  if (b.size() < 16) return bad_image(label, "fatbin shorter than its header");
  const auto header = read_le<std::uint16_t>(b, 6);
  const auto body = read_le<std::uint64_t>(b, 8);
  if (header < 16 || header > b.size() || body > b.size() - header)
    return bad_image(label, "fatbin declares " + std::to_string(header + body) +
                                " bytes but the image has " + std::to_string(b.size()));
  return ok();
}

}  // namespace

Result<void> check_image_bounds(std::span<const std::uint8_t> image, std::string_view label) {
  if (image.empty()) return bad_image(label, "empty image");
  if (image.size() >= 4 && image[0] == 0x7F && image[1] == 'E' && image[2] == 'L' &&
      image[3] == 'F')
    return check_elf(image, label);
  if (image.size() >= 4 && read_le<std::uint32_t>(image, 0) == kFatbinMagic)
    return check_fatbin(image, label);
  // Anything else is handed to the driver as PTX text, which must end in a NUL inside the buffer.
  if (std::memchr(image.data(), 0, image.size()) == nullptr)
    return bad_image(label, "neither ELF, fatbin nor NUL-terminated PTX");
  return ok();
}

}  // namespace kernels::loader
