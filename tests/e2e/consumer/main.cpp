// The C++ API from an installed prefix: kernels::loader::Loader, kernels::Error.
#include <kernels/loader/loader.h>

#include <cstdio>

int main() {
  auto loader = kernels::loader::Loader::create({});
  if (!loader) {
    std::printf("C++ consumer: %s\n", loader.error().message().c_str());
    return kernels::exit_code(loader.error().code);
  }
  auto source = (*loader)->device_source(0, 3);
  if (!source) {
    std::printf("C++ consumer: %s\n", source.error().message().c_str());
    return kernels::exit_code(source.error().code);
  }
  std::printf("C++ consumer: cuda:0 ver=3 served by %s\n",
              source->source == kernels::loader::Source::bundle ? "the bundle"
                                                                : "the built-in kernels");
  return 0;
}
