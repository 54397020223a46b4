# Installs the library, its headers under include/halftorch/, and a package config for find_package(halftorch).
include(CMakePackageConfigHelpers)
install(TARGETS halftorch EXPORT halftorchTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(dir core kernels nn optim io distributed data vision)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/halftorch/${dir}
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/include/halftorch/halftorch.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/halftorch)
install(EXPORT halftorchTargets NAMESPACE halftorch:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/halftorch)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/halftorchConfig.cmake.in
  ${CMAKE_BINARY_DIR}/halftorchConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/halftorch)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/halftorchConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/halftorchConfig.cmake ${CMAKE_BINARY_DIR}/halftorchConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/halftorch)
