# Writes OUT (server/build_revision.h in the build tree) with the project's
# VERSION and the git revision of SOURCE_DIR, rewriting it only when it
# changes. Run at every build (server/CMakeLists.txt), so that --version and
# lossservice_build_info name the commit the binary was built from; a tree
# without git (an exported tarball) gives REVISION if set, else "unknown".
if(NOT REVISION)
  execute_process(COMMAND git describe --always --dirty --abbrev=12
    WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE REVISION
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
  if(failed OR NOT REVISION)
    set(REVISION unknown)
  endif()
endif()
set(content "// Written by server/build_revision.cmake at build time.\n#define LOSS_VERSION \"${VERSION}\"\n#define LOSS_GIT_REVISION \"${REVISION}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()
