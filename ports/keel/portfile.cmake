# vcpkg port of keel, kept in keel's repository as an overlay port:
#
#   vcpkg install keel[grpc,spdlog] --overlay-ports=<keel>/ports
#
# It builds the source tree it sits in (two levels up), so vcpkg's binary
# cache does not notice edits there: pass --no-binarycaching while working on
# keel. A registry port would fetch a release instead, e.g. with
# vcpkg_from_git(OUT_SOURCE_PATH SOURCE_PATH URL <repository> REF <commit>).
#
# The install is keel's own `cmake --install` (what keel's packaging test
# checks), with the package files in share/keel rather than share/cmake/keel,
# where vcpkg expects them.
get_filename_component(SOURCE_PATH "${CURRENT_PORT_DIR}/../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/include/keel/keel.hpp")
  message(FATAL_ERROR "keel: this overlay port must stay in ports/keel of keel's source tree")
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    grpc KEEL_WITH_GRPC
  INVERTED_FEATURES
    # adapters/spdlog builds keel::spdlog whenever it finds spdlog; without
    # the feature, an spdlog some other port installed must not be picked up.
    spdlog CMAKE_DISABLE_FIND_PACKAGE_spdlog
)

if("grpc" IN_LIST FEATURES)
  # keel_grpc is always a static library (its generated code and the
  # adapter are compiled into the user's program).
  vcpkg_check_linkage(ONLY_STATIC_LIBRARY)
else()
  # Headers, CMake files and protos only: one configuration is enough.
  set(VCPKG_BUILD_TYPE release)
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DKEEL_BUILD_TESTS=OFF
    -DKEEL_BUILD_BENCH=OFF
    -DKEEL_BUILD_EXAMPLES=OFF
    -DKEEL_BUILD_TOOLS=OFF
    -DKEEL_INSTALL=ON
    -DKEEL_INSTALL_CMAKEDIR=share/keel
    -DKEEL_INSTALL_PROTODIR=share/keel/proto
  MAYBE_UNUSED_VARIABLES
    CMAKE_DISABLE_FIND_PACKAGE_spdlog
)

vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME keel CONFIG_PATH share/keel)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include" "${CURRENT_PACKAGES_DIR}/debug/share")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")

# keel's tree has no license file yet. Until it has one, the port records
# that fact rather than naming a license nobody chose.
# TODO: install the license with vcpkg_install_copyright once keel has one.
if(EXISTS "${SOURCE_PATH}/LICENSE")
  vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
else()
  message(WARNING "keel: the source tree has no LICENSE file; the package says so")
  file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
    "keel's source tree contains no license file. Ask its authors for the terms of use.\n")
endif()
