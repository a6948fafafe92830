# Turns every file under kernels_cl/ into an entry of a generated C++ table (path -> text), so an
# installed library needs no source tree. #include lines are resolved at run time against the
# same table (or against SPARQ_KERNEL_DIR), so the hash of the resolved text keys the cache.
function(sparq_embed_kernels out_cpp)
  file(GLOB_RECURSE kernel_files CONFIGURE_DEPENDS
       RELATIVE ${PROJECT_SOURCE_DIR}/kernels_cl
       ${PROJECT_SOURCE_DIR}/kernels_cl/*.cl ${PROJECT_SOURCE_DIR}/kernels_cl/*.h)
  list(SORT kernel_files)
  set(abs_files "")
  foreach(f IN LISTS kernel_files)
    list(APPEND abs_files ${PROJECT_SOURCE_DIR}/kernels_cl/${f})
  endforeach()
  add_custom_command(
    OUTPUT ${out_cpp}
    COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR}/kernels_cl -DOUT=${out_cpp}
            "-DFILES=${kernel_files}" -P ${PROJECT_SOURCE_DIR}/cmake/embed_kernels_script.cmake
    DEPENDS ${abs_files} ${PROJECT_SOURCE_DIR}/cmake/embed_kernels_script.cmake
    COMMENT "Embedding OpenCL kernel sources"
    VERBATIM)
endfunction()
