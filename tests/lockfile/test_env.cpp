// The one rule for boolean environment switches: huggingface_hub's 1/ON/YES/TRUE, any case.
#include <catch2/catch.hpp>

#include "kernels/lockfile/env.h"

using namespace kernels;

TEST_CASE("switches are on for 1, ON, YES, TRUE in any case and off otherwise", "[env]") {
  for (const char* on : {"1", "ON", "on", "On", "YES", "yes", "TRUE", "true", "True"}) {
    INFO(on);
    CHECK(env_truthy(on));
  }
  for (const char* off : {"", "0", "no", "false", "off", "y", "t", "2", " 1", "1 ", "enabled"}) {
    INFO('"' << off << '"');
    CHECK_FALSE(env_truthy(off));
  }
}

TEST_CASE("a switch read through an EnvLookup is off when unset", "[env]") {
  EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "SET_ON") return "yes";
    if (name == "SET_OFF") return "nope";
    return std::nullopt;
  };
  CHECK(env_truthy(env, "SET_ON"));
  CHECK_FALSE(env_truthy(env, "SET_OFF"));
  CHECK_FALSE(env_truthy(env, "UNSET"));
}
