# Finds every dependency on the machine; nothing is downloaded at build time.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3 REQUIRED)
find_library(HT_DEFLATE_LIB deflate)
find_path(HT_DEFLATE_INCLUDE libdeflate.h)
find_package(ZLIB REQUIRED)
# Gloo (Debian libgloo-dev): the CPU collectives of ht::distributed.
find_path(HT_GLOO_INCLUDE gloo/allreduce.h)
find_library(HT_GLOO_LIB gloo)
if(NOT HT_GLOO_INCLUDE OR NOT HT_GLOO_LIB)
  message(FATAL_ERROR "halftorch: Gloo not found (install Debian's libgloo-dev, or run scripts/setup)")
endif()
# oneDNN (Debian libdnnl-dev, 2.6): the CPU convolutions and GEMM, as cuDNN and cuBLAS are the GPU's. Found by hand: Debian's
# dnnl-config.cmake also demands the OpenCL headers of its GPU runtime, which halftorch does not use.
find_path(HT_DNNL_INCLUDE oneapi/dnnl/dnnl.hpp)
find_library(HT_DNNL_LIB dnnl)
if(NOT HT_DNNL_INCLUDE OR NOT HT_DNNL_LIB)
  message(FATAL_ERROR "halftorch: oneDNN not found (install Debian's libdnnl-dev, or run scripts/setup)")
endif()
message(STATUS "halftorch: oneDNN ${HT_DNNL_LIB} (headers ${HT_DNNL_INCLUDE})")

# libjpeg-turbo (Debian libturbojpeg0-dev) and libpng (libpng-dev): ht::vision's image decoding.
find_path(HT_TURBOJPEG_INCLUDE turbojpeg.h)
find_library(HT_TURBOJPEG_LIB turbojpeg)
if(NOT HT_TURBOJPEG_INCLUDE OR NOT HT_TURBOJPEG_LIB)
  message(FATAL_ERROR "halftorch: libjpeg-turbo not found (install Debian's libturbojpeg0-dev, or run scripts/setup)")
endif()
find_package(PNG REQUIRED)

# A private interface target: consumers of the installed library see none of these.
add_library(ht_deps_private INTERFACE)
target_link_libraries(ht_deps_private INTERFACE OpenMP::OpenMP_CXX ${HT_DNNL_LIB}
                                                nlohmann_json::nlohmann_json ZLIB::ZLIB ${HT_GLOO_LIB}
                                                ${HT_TURBOJPEG_LIB} PNG::PNG)
target_include_directories(ht_deps_private INTERFACE ${HT_GLOO_INCLUDE} ${HT_DNNL_INCLUDE} ${HT_TURBOJPEG_INCLUDE})
if(HT_DEFLATE_LIB AND HT_DEFLATE_INCLUDE)
  target_link_libraries(ht_deps_private INTERFACE ${HT_DEFLATE_LIB})
  target_include_directories(ht_deps_private INTERFACE ${HT_DEFLATE_INCLUDE})
  target_compile_definitions(ht_deps_private INTERFACE HT_HAVE_LIBDEFLATE=1)
endif()

# CUDA: AUTO turns it on when nvcc, cuBLAS, cuDNN and NCCL are all present.
set(HT_WITH_CUDA OFF)
if(NOT HT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "80;90")
    endif()
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc's C++20 flag; teach it.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    string(APPEND CMAKE_CUDA_FLAGS " --expt-relaxed-constexpr")
    find_package(CUDAToolkit)
    # cuDNN and NCCL: HT_CUDNN_ROOT / HT_NCCL_ROOT (CMake or environment variables, prefixes holding include/
    # and lib/), else the CUDA toolkit and system paths, else the pip wheels a PyTorch install brings
    # (nvidia-cudnn-cu*, nvidia-nccl-cu*: the folder under python3's site-packages/nvidia that holds
    # include/cudnn.h or include/nccl.h, nvidia/cudnn or nvidia/cu13 say; versioned .so only).
    set(HT_CUDNN_ROOT "$ENV{HT_CUDNN_ROOT}" CACHE PATH "cuDNN prefix (include/, lib/)")
    set(HT_NCCL_ROOT "$ENV{HT_NCCL_ROOT}" CACHE PATH "NCCL prefix (include/, lib/)")
    set(ht_cudnn_wheel "")
    set(ht_nccl_wheel "")
    find_program(HT_WHEEL_PYTHON NAMES python3)
    if(HT_WHEEL_PYTHON)
      execute_process(
        COMMAND ${HT_WHEEL_PYTHON} -c "import glob, os, sys
for m in ('cudnn', 'nccl'):
    for p in sys.path:
        hits = sorted(glob.glob(os.path.join(p or '.', 'nvidia', '**', 'include', m + '.h'), recursive=True))
        if hits:
            print(m + '=' + os.path.dirname(os.path.dirname(hits[0])))
            break"
        OUTPUT_VARIABLE ht_wheels ERROR_QUIET TIMEOUT 60)
      string(REGEX MATCH "cudnn=([^\n]*)" _ "${ht_wheels}")
      set(ht_cudnn_wheel "${CMAKE_MATCH_1}")
      string(REGEX MATCH "nccl=([^\n]*)" _ "${ht_wheels}")
      set(ht_nccl_wheel "${CMAKE_MATCH_1}")
    endif()
    set(ht_cudnn_dirs ${HT_CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda
                      ${ht_cudnn_wheel})
    set(ht_nccl_dirs ${HT_NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda
                     ${ht_nccl_wheel})
    find_library(HT_CUDNN_LIB NAMES cudnn libcudnn.so.9 NAMES_PER_DIR HINTS ${ht_cudnn_dirs} PATH_SUFFIXES lib lib64)
    find_path(HT_CUDNN_INCLUDE cudnn.h HINTS ${ht_cudnn_dirs} PATH_SUFFIXES include)
    find_library(HT_NCCL_LIB NAMES nccl libnccl.so.2 NAMES_PER_DIR HINTS ${ht_nccl_dirs} PATH_SUFFIXES lib lib64)
    find_path(HT_NCCL_INCLUDE nccl.h HINTS ${ht_nccl_dirs} PATH_SUFFIXES include)
    message(STATUS "halftorch: cuDNN ${HT_CUDNN_LIB} (headers ${HT_CUDNN_INCLUDE}); "
                   "NCCL ${HT_NCCL_LIB} (headers ${HT_NCCL_INCLUDE})")
    if(CUDAToolkit_FOUND AND TARGET CUDA::cublas AND HT_CUDNN_LIB AND HT_CUDNN_INCLUDE AND HT_NCCL_LIB
       AND HT_NCCL_INCLUDE)
      set(HT_WITH_CUDA ON)
      target_link_libraries(ht_deps_private INTERFACE CUDA::cudart CUDA::cublas ${HT_CUDNN_LIB} ${HT_NCCL_LIB})
      target_include_directories(ht_deps_private INTERFACE ${HT_CUDNN_INCLUDE} ${HT_NCCL_INCLUDE})
    endif()
  endif()
  if(HT_CUDA STREQUAL "ON" AND NOT HT_WITH_CUDA)
    message(FATAL_ERROR "HT_CUDA=ON but something is missing: nvcc '${CMAKE_CUDA_COMPILER}', CUDA toolkit "
                        "${CUDAToolkit_FOUND}, cuBLAS '${CUDA_cublas_LIBRARY}', cuDNN '${HT_CUDNN_LIB}' / "
                        "'${HT_CUDNN_INCLUDE}', NCCL '${HT_NCCL_LIB}' / '${HT_NCCL_INCLUDE}' (set HT_CUDNN_ROOT or "
                        "HT_NCCL_ROOT to a prefix with include/ and lib/)")
  endif()
endif()
message(STATUS "halftorch: CUDA backend ${HT_WITH_CUDA} (architectures: ${CMAKE_CUDA_ARCHITECTURES})")
