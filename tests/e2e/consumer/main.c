/* Starts the loader through the C ABI and says which kernels serve GPU 0; without a GPU, the
 * documented no-device status (KL_ERR_NO_DEVICE, 14) and the library's message. */
#include <kernels/kernels_loader.h>
#include <stdio.h>

int main(void) {
  printf("C consumer: loader ABI %d\n", kernels_loader_abi_version());
  int rc = kernels_loader_init(NULL);
  if (rc != KL_OK) {
    printf("kernels_loader_init: status %d: %s\n", rc, kernels_loader_last_error());
    return rc;
  }
  kl_source_info info;
  kernels_loader_source_info_init(&info);
  rc = kernels_loader_device_source(0, 3, &info);
  if (rc != KL_OK) {
    printf("kernels_loader_device_source: status %d: %s\n", rc, kernels_loader_last_error());
    return rc;
  }
  printf("cuda:0 ver=3 served by %s\n", info.source == 1 ? "the bundle" : "the built-in kernels");
  return 0;
}
