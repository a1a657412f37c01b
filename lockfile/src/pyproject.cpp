#include "kernels/lockfile/pyproject.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <tuple>

#include <toml++/toml.h>

#include "file_read.h"
#include "kernels/lockfile/lockfile.h"
#include "toml_screen.h"

namespace kernels {

namespace {

constexpr std::size_t kMaxPyprojectBytes = std::size_t{4} << 20;

std::string where(std::string_view source, const toml::source_position& p) {
  const auto line = p.line == 0 ? 1u : p.line;
  const auto column = p.column == 0 ? 1u : p.column;
  return std::string(source) + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Error invalid(std::string what, std::string object, std::string hint = {}) {
  return make_error(ErrorCode::lockfile_invalid, std::move(what), std::move(object),
                    std::move(hint));
}

const char* toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

// The key of a `key = value` line, as written (quotes kept), printable: control and non-ASCII
// bytes as \xNN. nullopt when the line holds no '='.
std::optional<std::string> key_on_line(std::string_view text, std::uint32_t line) {
  for (std::uint32_t n = 1; n < line; ++n) {
    const auto eol = text.find('\n');
    if (eol == std::string_view::npos) return std::nullopt;
    text.remove_prefix(eol + 1);
  }
  text = text.substr(0, text.find('\n'));
  const auto eq = text.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  std::string_view key = text.substr(0, eq);
  while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
  while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
  if (key.empty()) return std::nullopt;
  return printable_bytes(key.substr(0, 200));
}

std::string dependency_example(std::string_view repo_id) {
  return "write \"" + std::string(repo_id) + "\" = 1 to use the kernel's branch v1";
}

// [tool.kernels] allow-untrusted = ["org", "org/name", ...]: absent is empty.
Result<std::vector<std::string>> parse_allow_untrusted(const toml::table* kernels_table,
                                                       std::string_view source) {
  std::vector<std::string> out;
  const toml::node* node = kernels_table ? kernels_table->get("allow-untrusted") : nullptr;
  if (node == nullptr) return out;
  const std::string example = "e.g. allow-untrusted = [\"my-org\"] or [\"my-org/my-kernel\"]";
  if (!node->is_array()) {
    return invalid(
        std::string("expected [tool.kernels] allow-untrusted to be an array of strings, found ") +
            toml_type_name(*node),
        where(source, node->source().begin), example);
  }
  for (const toml::node& item : *node->as_array()) {
    const std::string at = where(source, item.source().begin);
    if (!item.is_string()) {
      return invalid(std::string(
                         "expected an organisation or repo id string in allow-untrusted, found ") +
                         toml_type_name(item),
                     at, example);
    }
    std::string entry = item.as_string()->get();
    if (!is_allow_untrusted_entry(entry)) {
      return invalid("allow-untrusted entry \"" + printable_bytes(entry.substr(0, 200)) +
                         "\" is neither an organisation nor an \"org/name\" repo id",
                     at, example);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

Result<std::vector<KernelDependency>> parse_impl(
    std::string_view text, std::string_view source,
    std::vector<std::string>* allow_untrusted = nullptr) {
  std::string ascii;  // what toml++ parses: toml_screen.h says why
  if (auto finding = screen_toml_for_parser(text, ascii))
    return invalid(std::move(finding->what),
                   std::string(source) + ":" + std::to_string(finding->line) + ":" +
                       std::to_string(finding->column),
                   std::move(finding->hint));
  toml::table root;
  try {
    root = toml::parse(ascii, source);
  } catch (const toml::parse_error& e) {
    const std::string description(e.description());
    if (description.find("cannot redefine existing") != std::string::npos) {
      // toml++ garbles a quoted key in this message ('"ororg/attn" '); the key as written is
      // the text before '=' on the error's line.
      if (auto key = key_on_line(text, e.source().begin.line)) {
        return invalid("duplicate key " + *key + ": it is already defined in this table",
                       where(source, e.source().begin), "keep one of the two lines");
      }
    }
    return invalid(description, where(source, e.source().begin), "fix the TOML syntax");
  }
  const toml::node* tool = root.get("tool");
  const toml::table* kernels_table = nullptr;
  if (tool != nullptr && tool->is_table()) {
    const toml::node* k = tool->as_table()->get("kernels");
    if (k != nullptr && k->is_table()) kernels_table = k->as_table();
  }
  if (allow_untrusted) {
    auto allowed = parse_allow_untrusted(kernels_table, source);
    if (!allowed) return std::move(allowed).error();
    *allow_untrusted = std::move(*allowed);
  }
  const toml::node* deps_node = kernels_table ? kernels_table->get("dependencies") : nullptr;
  if (deps_node == nullptr) {
    const auto pos = kernels_table ? kernels_table->source().begin : toml::source_position{1, 1};
    return invalid(
        "no [tool.kernels.dependencies] table", where(source, pos),
        "add one, e.g.\n  [tool.kernels.dependencies]\n  \"kernels-community/relu\" = 1");
  }
  if (!deps_node->is_table()) {
    return invalid(std::string("expected [tool.kernels.dependencies] to be a table, found ") +
                       toml_type_name(*deps_node),
                   where(source, deps_node->source().begin));
  }
  const toml::table& deps = *deps_node->as_table();

  // toml::table is an unordered map; file order is recovered from each key's source position.
  struct Item {
    toml::source_position pos;
    const toml::key* key;
    const toml::node* value;
  };
  std::vector<Item> items;
  for (auto&& [key, value] : deps) items.push_back({key.source().begin, &key, &value});
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });

  std::vector<KernelDependency> out;
  for (const Item& it : items) {
    const std::string repo_id(it.key->str());
    if (!is_repo_id(repo_id)) {
      return invalid("malformed repo id \"" + repo_id +
                         "\": expected \"org/name\" (letters, digits, '-', '_', '.'; no \"--\" "
                         "or \"..\")",
                     where(source, it.pos), "use the Hub id, e.g. \"kernels-community/relu\"");
    }
    const toml::node& v = *it.value;
    const std::string at = where(source, v.source().begin);
    if (v.is_string()) {
      return invalid("version specifier \"" + v.as_string()->get() + "\" for \"" + repo_id +
                         "\" is no longer supported: expected an integer major version",
                     at,
                     "string (PEP 440) specifiers were removed in kernels 0.14; " +
                         dependency_example(repo_id));
    }
    if (!v.is_integer()) {
      return invalid(std::string("expected an integer version for \"") + repo_id + "\", found " +
                         toml_type_name(v),
                     at, dependency_example(repo_id));
    }
    const std::int64_t n = v.as_integer()->get();
    if (n < 0 || n > INT_MAX) {
      return invalid("version " + std::to_string(n) + " for \"" + repo_id +
                         "\" is out of range: expected a non-negative integer",
                     at, dependency_example(repo_id));
    }
    out.push_back({repo_id, static_cast<int>(n)});
  }
  return out;
}

}  // namespace

bool is_allow_untrusted_entry(std::string_view entry) {
  if (entry.find('/') != std::string_view::npos) return is_repo_id(entry);
  return !entry.empty() && is_repo_id(std::string(entry) + "/x");
}

Result<PyprojectKernels> parse_pyproject_kernels(std::string_view text, std::string_view source) {
  try {
    PyprojectKernels out;
    auto deps = parse_impl(text, source, &out.allow_untrusted);
    if (!deps) return std::move(deps).error();
    out.dependencies = std::move(*deps);
    return out;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("pyproject reader failed: ") + e.what(),
                      std::string(source));
  }
}

Result<PyprojectKernels> read_pyproject_kernels(const std::filesystem::path& path) {
  auto bytes = read_small_file(path, kMaxPyprojectBytes, ErrorCode::io,
                               "run the command in a project directory that has a pyproject.toml");
  if (!bytes) return std::move(bytes).error();
  return parse_pyproject_kernels(*bytes, path.string());
}

Result<std::vector<KernelDependency>> parse_pyproject(std::string_view text,
                                                      std::string_view source) {
  try {
    return parse_impl(text, source);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("pyproject reader failed: ") + e.what(),
                      std::string(source));
  }
}

Result<std::vector<KernelDependency>> read_pyproject(const std::filesystem::path& path) {
  auto bytes = read_small_file(path, kMaxPyprojectBytes, ErrorCode::io,
                               "run the command in a project directory that has a pyproject.toml");
  if (!bytes) return std::move(bytes).error();
  return parse_pyproject(*bytes, path.string());
}

}  // namespace kernels
