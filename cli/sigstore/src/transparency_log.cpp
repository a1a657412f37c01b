#include "transparency_log.h"

#include <charconv>

#include <openssl/pem.h>

#include "crypto.h"
#include "json_read.h"

namespace kernels::sigstore {
namespace {

std::string hash_children(std::string_view left, std::string_view right) {
  std::string data(1, '\x01');
  data += left;
  data += right;
  return sha256(data);
}

int bit_length(std::uint64_t v) {
  int n = 0;
  while (v) {
    ++n;
    v >>= 1;
  }
  return n;
}

}  // namespace

const LogKey* find_rekor_key(const TrustedRoot& root, const TlogEntry& entry, std::int64_t time) {
  for (const LogKey& key : root.tlogs)
    if ((key.key_id == entry.log_id || key.log_id == entry.log_id) && key.valid_for.contains(time))
      return &key;
  return nullptr;
}

// RFC 6962 §2.1.1 / RFC 9162 §2.1.3.2, as Trillian's and sigstore-python's verifiers do it.
std::optional<Refusal> check_inclusion_proof(const TlogEntry& entry) {
  const InclusionProof& proof = entry.proof;
  if (proof.tree_size <= 0 || proof.log_index >= proof.tree_size)
    return Refusal{Check::inclusion_proof, "log index " + std::to_string(proof.log_index) +
                                               " is outside the tree of size " +
                                               std::to_string(proof.tree_size)};
  auto index = static_cast<std::uint64_t>(proof.log_index);
  auto size = static_cast<std::uint64_t>(proof.tree_size);
  int inner = bit_length(index ^ (size - 1));
  int border = __builtin_popcountll(index >> inner);
  if (proof.hashes.size() != static_cast<std::size_t>(inner + border))
    return Refusal{Check::inclusion_proof, "the proof has " + std::to_string(proof.hashes.size()) +
                                               " hashes, expected " +
                                               std::to_string(inner + border)};
  for (const std::string& h : proof.hashes)
    if (h.size() != 32) return Refusal{Check::inclusion_proof, "a proof hash is not 32 bytes"};
  std::string hash = sha256(std::string(1, '\x00') + entry.canonicalized_body);
  for (int i = 0; i < inner; ++i)
    hash = ((index >> i) & 1) == 0 ? hash_children(hash, proof.hashes[i])
                                   : hash_children(proof.hashes[i], hash);
  for (std::size_t i = static_cast<std::size_t>(inner); i < proof.hashes.size(); ++i)
    hash = hash_children(proof.hashes[i], hash);
  if (hash != proof.root_hash)
    return Refusal{Check::inclusion_proof, "the proof leads to root " + hex(hash) +
                                               ", not to the stated root " + hex(proof.root_hash)};
  return std::nullopt;
}

// The checkpoint is a signed note (golang.org/x/mod/sumdb/note): the text "<origin>\n<size>\n
// <base64 root>\n[other lines]", a blank line, then lines "— <name> <base64(key hint(4) sig)>".
std::optional<Refusal> check_checkpoint(const TlogEntry& entry, const LogKey& key) {
  const std::string& text = entry.proof.checkpoint;
  auto bad = [](std::string m) { return Refusal{Check::checkpoint, std::move(m)}; };
  std::size_t split = text.find("\n\n");
  if (split == std::string::npos || text.find("\n\n", split + 1) != std::string::npos)
    return bad("the checkpoint must have exactly one blank line between its text and signatures");
  std::string note = text.substr(0, split + 1);
  std::string_view sigs = std::string_view(text).substr(split + 2);
  if (sigs.empty() || sigs.back() != '\n')
    return bad("the checkpoint's signature block is malformed");
  const std::string hint = entry.log_id.substr(0, 4);
  static const std::string kDash = "\xE2\x80\x94 ";  // U+2014 EM DASH, then a space
  bool verified = false;
  while (!sigs.empty()) {
    std::size_t eol = sigs.find('\n');
    std::string_view line = sigs.substr(0, eol);
    sigs.remove_prefix(eol + 1);
    if (line.substr(0, kDash.size()) != kDash)
      return bad("a checkpoint signature line is malformed");
    line.remove_prefix(kDash.size());
    std::size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0)
      return bad("a checkpoint signature line is malformed");
    std::optional<std::string> raw = base64_decode(line.substr(space + 1));
    if (!raw || raw->size() < 5)
      return bad("a checkpoint signature is not base64 of at least 5 bytes");
    if (raw->substr(0, 4) != hint) continue;
    PkeyPtr pkey = load_spki(key.spki_der);
    if (!pkey || !verify_signature(pkey.get(), note, std::string_view(*raw).substr(4)))
      return bad("the checkpoint's signature does not verify with the log's key (" + key.base_url +
                 ")");
    verified = true;
    break;
  }
  if (!verified) return bad("the checkpoint carries no signature by log " + hex(entry.log_id));
  // The note's lines: origin, tree size, root hash.
  std::vector<std::string_view> lines;
  std::string_view rest(note);
  while (!rest.empty()) {
    std::size_t eol = rest.find('\n');
    lines.push_back(rest.substr(0, eol));
    rest.remove_prefix(eol + 1);
  }
  if (lines.size() < 3 || lines[0].empty()) return bad("the checkpoint's text has too few lines");
  std::int64_t size = 0;
  auto [end, ec] = std::from_chars(lines[1].data(), lines[1].data() + lines[1].size(), size);
  if (ec != std::errc() || end != lines[1].data() + lines[1].size())
    return bad("the checkpoint's tree size is not a number");
  std::optional<std::string> root = base64_decode(lines[2]);
  if (!root) return bad("the checkpoint's root hash is not base64");
  if (*root != entry.proof.root_hash)
    return bad("the checkpoint names root " + hex(*root) + ", the inclusion proof " +
               hex(entry.proof.root_hash));
  if (size != entry.proof.tree_size)
    return bad("the checkpoint names tree size " + std::to_string(size) + ", the inclusion proof " +
               std::to_string(entry.proof.tree_size));
  return std::nullopt;
}

// The SET signs the canonical JSON (RFC 8785: sorted keys, no spaces) of
// {"body", "integratedTime", "logID" (hex), "logIndex"}; none of the values needs escaping.
std::optional<Refusal> check_set(const TlogEntry& entry, const LogKey& key) {
  if (!entry.signed_entry_timestamp)
    return Refusal{Check::set, "the entry has no inclusion promise"};
  if (!entry.integrated_time)
    return Refusal{Check::set, "the entry has an inclusion promise but no integrated time"};
  std::string payload = "{\"body\":\"" + base64_encode(entry.canonicalized_body) +
                        "\",\"integratedTime\":" + std::to_string(*entry.integrated_time) +
                        ",\"logID\":\"" + hex(entry.log_id) +
                        "\",\"logIndex\":" + std::to_string(entry.log_index) + "}";
  PkeyPtr pkey = load_spki(key.spki_der);
  if (!pkey || !verify_signature(pkey.get(), payload, *entry.signed_entry_timestamp))
    return Refusal{Check::set, "the signed entry timestamp does not verify with the log's key (" +
                                   key.base_url + ")"};
  return std::nullopt;
}

std::optional<Refusal> check_hashedrekord_body(const TlogEntry& entry, std::string_view signature,
                                               std::string_view leaf_der, std::string_view digest) {
  auto bad = [](std::string m) {
    return Refusal{Check::tlog_body, "the log entry does not match the bundle: " + std::move(m)};
  };
  if (entry.kind != "hashedrekord")
    return bad("kind is \"" + printable_bytes(entry.kind) + "\", expected hashedrekord");
  std::string error;
  std::optional<nlohmann::json> body = read_json(entry.canonicalized_body, error);
  if (!body) return bad("its body is " + error);
  const std::string* kind = string_at(*body, "kind");
  const std::string* version = string_at(*body, "apiVersion");
  if (!kind || *kind != "hashedrekord" || !version || *version != entry.version)
    return bad("its body's kind/apiVersion differ from the entry's");
  const nlohmann::json* spec = object_at(*body, "spec");
  const nlohmann::json* sig = spec ? object_at(*spec, "signature") : nullptr;
  const nlohmann::json* data = spec ? object_at(*spec, "data") : nullptr;
  const nlohmann::json* hash = data ? object_at(*data, "hash") : nullptr;
  const nlohmann::json* pub = sig ? object_at(*sig, "publicKey") : nullptr;
  const std::string* content = sig ? string_at(*sig, "content") : nullptr;
  const std::string* pem_b64 = pub ? string_at(*pub, "content") : nullptr;
  const std::string* algorithm = hash ? string_at(*hash, "algorithm") : nullptr;
  const std::string* value = hash ? string_at(*hash, "value") : nullptr;
  if (!content || !pem_b64 || !algorithm || !value)
    return bad("its body lacks signature.content, signature.publicKey.content or data.hash");
  if (*algorithm != "sha256" || *value != hex(digest))
    return bad("it names digest " + printable_bytes(*algorithm) + ":" + printable_bytes(*value) +
               ", the signed bytes have sha256:" + hex(digest));
  if (base64_decode(*content) != std::string(signature)) return bad("it names another signature");
  std::optional<std::string> pem = base64_decode(*pem_b64);
  X509Ptr cert;
  if (pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem->data(),
                                                                  static_cast<int>(pem->size())),
                                                  BIO_free);
    cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    openssl_error();
  }
  if (!cert || certificate_der(cert.get()) != leaf_der) return bad("it names another certificate");
  return std::nullopt;
}

}  // namespace kernels::sigstore
