# cmake -DKERNELS=<the kernels program> -DOUT=<kernels.1> -P write_man_page.cmake: the manual page
# as the program prints it (`kernels help --man`), written whole or not at all.
execute_process(COMMAND ${KERNELS} help --man OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "`${KERNELS} help --man` failed (${rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
