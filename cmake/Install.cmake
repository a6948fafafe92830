# cmake --install: libsparq.so (SONAME libsparq.so.<major>), include/sparq/*.h, the tools, a CMake
# package (find_package(sparq CONFIG) -> sparq::sparq) and a pkg-config file (sparq.pc).
include(CMakePackageConfigHelpers)
set(SPARQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sparq)

install(TARGETS sparq EXPORT sparqTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(DIRECTORY host/include/sparq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(EXPORT sparqTargets NAMESPACE sparq:: DESTINATION ${SPARQ_CMAKE_DIR} COMPONENT dev)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sparqConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sparqConfig.cmake INSTALL_DESTINATION ${SPARQ_CMAKE_DIR})
# 0.x: a minor release may change the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sparqConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sparqConfig.cmake ${PROJECT_BINARY_DIR}/sparqConfigVersion.cmake
        DESTINATION ${SPARQ_CMAKE_DIR} COMPONENT dev)

# pkg-config: relocatable (prefix relative to the .pc file), so `cmake --install --prefix P` works.
file(RELATIVE_PATH SPARQ_PC_UP /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" SPARQ_PC_UP "${SPARQ_PC_UP}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(SPARQ_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(SPARQ_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SPARQ_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(SPARQ_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/sparq.pc.in ${PROJECT_BINARY_DIR}/sparq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sparq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)
