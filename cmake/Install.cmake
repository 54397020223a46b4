# Installs the library, its headers under include/halftorch/, and a package config for find_package(halftorch).
include(CMakePackageConfigHelpers)
install(TARGETS halftorch EXPORT halftorchTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# A header is public when every project header it includes is named "halftorch/...": those are installed; the
# kernels/ internals (and core/raw.h, which includes them) are not.
foreach(dir core nn optim io distributed data vision)
  file(GLOB headers ${PROJECT_SOURCE_DIR}/${dir}/*.h)
  foreach(header ${headers})
    file(STRINGS ${header} project_includes REGEX "^#include \"")
    list(FILTER project_includes EXCLUDE REGEX "^#include \"halftorch/")
    if(NOT project_includes)
      install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/halftorch/${dir})
    endif()
  endforeach()
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/include/halftorch/halftorch.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/halftorch)
install(EXPORT halftorchTargets NAMESPACE halftorch:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/halftorch)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/halftorchConfig.cmake.in
  ${CMAKE_BINARY_DIR}/halftorchConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/halftorch)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/halftorchConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/halftorchConfig.cmake ${CMAKE_BINARY_DIR}/halftorchConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/halftorch)
