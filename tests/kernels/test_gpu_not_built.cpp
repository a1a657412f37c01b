// Built only when the build had no nvcc: the [gpu] tests and the built-in image do not exist, and
// this says so in the test report instead of leaving them silently absent.
#include <catch2/catch.hpp>

#include "support/skip.h"

TEST_CASE("GPU tests of the built-in attention kernels", "[gpu]") {
  KERNELS_SKIP("built without nvcc (KERNELS_HAVE_CUDA is OFF): no built-in image, no [gpu] tests");
}
