# LOSS_SANITIZE: sanitizers for every target of the build tree (our code
# only: Debian's gRPC, Protobuf and Abseil are not instrumented).
#   address  ASan + UBSan (ON means the same); what `./dev asan` builds
#   thread   TSan; what `./dev tsan` builds; every target also gets
#            cmake/tsan_absl_sync.cc (Abseil's locks made visible to TSan)
#   fuzz     clang: ASan + UBSan + libFuzzer's coverage; the fuzz targets
#            link libFuzzer itself (fuzz/CMakeLists.txt); what `./dev fuzz` builds
# Any report is fatal (-fno-sanitize-recover), so that a test or a fuzzer
# stops at the first one.
set(LOSS_SANITIZE "" CACHE STRING "Sanitizers: address (or ON), thread, fuzz, or empty")
if(LOSS_SANITIZE STREQUAL "ON")
  set(LOSS_SANITIZE address)
endif()
if(LOSS_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(LOSS_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  add_library(loss_tsan_absl_sync OBJECT ${CMAKE_CURRENT_LIST_DIR}/tsan_absl_sync.cc)
  # Executables only, and never part of the installed export.
  link_libraries(
    "$<BUILD_INTERFACE:$<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:loss_tsan_absl_sync>>"
    ${CMAKE_DL_LIBS})
elseif(LOSS_SANITIZE STREQUAL "fuzz")
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LOSS_SANITIZE=fuzz needs clang (libFuzzer): CXX=clang++-14")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT LOSS_SANITIZE STREQUAL "" AND NOT LOSS_SANITIZE STREQUAL "OFF")
  message(FATAL_ERROR "LOSS_SANITIZE must be address, thread, fuzz or empty, got ${LOSS_SANITIZE}")
endif()
