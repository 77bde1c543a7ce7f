# keel_protobuf_generate: generates C++ from .proto files with protoc and
# compiles the result into a target (in the manner of asio-grpc's
# asio_grpc_protobuf_generate). keel's core needs no protobuf; this helper
# serves the example objects, the gRPC adapter and users' own object types.
#
#   keel_protobuf_generate(TARGET <target> PROTOS <file.proto>...
#                          [GRPC] [GRPC_PLUGIN <grpc_cpp_plugin>]
#                          [IMPORT_DIRS <dir>...]
#                          [OUT_DIR <dir>]
#                          [PROTOC <protoc>]
#                          [LINK_LIBRARIES <lib>...]
#                          [USAGE_REQUIREMENTS PUBLIC|PRIVATE|INTERFACE])
#
#   TARGET       an existing library or executable; the generated .cc files
#                are added to its sources, OUT_DIR to its include directories
#                and protobuf::libprotobuf (see LINK_LIBRARIES) to its link
#                libraries.
#   PROTOS       the .proto files (relative paths are from the current source
#                directory).
#   GRPC         also run gRPC's C++ plugin: each proto generates
#                .grpc.pb.{h,cc} (the service stubs) beside its .pb.{h,cc},
#                and gRPC::grpc++ is linked too.
#   GRPC_PLUGIN  the plugin, a path or an executable target (default: the
#                gRPC::grpc_cpp_plugin target of find_package(gRPC), else
#                KEEL_GRPC_CPP_PLUGIN, else grpc_cpp_plugin on the PATH).
#                With find_package(keel COMPONENTS grpc), keel's config has
#                already found gRPC.
#   IMPORT_DIRS  protoc's -I roots (default: each proto's own directory). A
#                proto generates <OUT_DIR>/<path relative to the first import
#                dir holding it>.pb.{h,cc}: with IMPORT_DIRS proto,
#                proto/keel/objects.proto is included as "keel/objects.pb.h".
#   OUT_DIR      where the code goes (default:
#                ${CMAKE_CURRENT_BINARY_DIR}/generated/<target>).
#   PROTOC       the compiler, a path or an executable target (default: see
#                below).
#   LINK_LIBRARIES
#                what to link instead of protobuf::libprotobuf (and
#                gRPC::grpc++), for builds that found protobuf and gRPC some
#                other way (pkg-config); then neither target is required.
#   USAGE_REQUIREMENTS
#                how the include directory and the libraries propagate to the
#                target's users (default PUBLIC: they include the headers).
#
# The helper uses the protobuf::protoc and protobuf::libprotobuf targets that
# FindProtobuf (Debian's libprotobuf-dev and protobuf-compiler, protobuf 3.21)
# or protobuf-config.cmake define, else Protobuf_PROTOC_EXECUTABLE, else
# KEEL_PROTOC. When the caller found neither protobuf nor gRPC, it runs
# find_package(Protobuf) and, for GRPC, find_package(gRPC CONFIG) itself (the
# imported targets land in the caller's directory), and as a last resort
# looks for protoc and grpc_cpp_plugin on the PATH. It depends on nothing of
# keel's source tree, so it works the same from an installed package, from
# add_subdirectory() and inside keel's own build.
#
# Each proto is regenerated when it or anything it imports changes (protoc's
# --dependency_out as the DEPFILE).
include_guard(GLOBAL)

function(keel_protobuf_generate)
  cmake_parse_arguments(PARSE_ARGV 0 arg "GRPC"
    "TARGET;OUT_DIR;USAGE_REQUIREMENTS;PROTOC;GRPC_PLUGIN" "PROTOS;IMPORT_DIRS;LINK_LIBRARIES")
  set(_fn "keel_protobuf_generate")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${_fn}: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TARGET)
    message(FATAL_ERROR "${_fn}: TARGET is required")
  endif()
  if(NOT TARGET "${arg_TARGET}")
    message(FATAL_ERROR "${_fn}: '${arg_TARGET}' is not a target; create it first, "
      "e.g. add_library(${arg_TARGET} STATIC)")
  endif()
  if(NOT arg_PROTOS)
    message(FATAL_ERROR "${_fn}: PROTOS is required (the .proto files to generate from)")
  endif()
  if(NOT arg_USAGE_REQUIREMENTS)
    set(arg_USAGE_REQUIREMENTS PUBLIC)
  elseif(NOT arg_USAGE_REQUIREMENTS MATCHES "^(PUBLIC|PRIVATE|INTERFACE)$")
    message(FATAL_ERROR "${_fn}: USAGE_REQUIREMENTS must be PUBLIC, PRIVATE or INTERFACE, "
      "not '${arg_USAGE_REQUIREMENTS}'")
  endif()
  if(NOT arg_OUT_DIR)
    set(arg_OUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/generated/${arg_TARGET}")
  endif()
  cmake_path(ABSOLUTE_PATH arg_OUT_DIR BASE_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}" NORMALIZE)

  # What the caller has not found yet, looked up here; variables set by
  # find_package stay local to this function, imported targets do not.
  if(NOT arg_PROTOC AND NOT TARGET protobuf::protoc AND NOT Protobuf_PROTOC_EXECUTABLE
     AND NOT KEEL_PROTOC)
    find_package(Protobuf QUIET)
  endif()
  if(NOT arg_LINK_LIBRARIES AND NOT TARGET protobuf::libprotobuf)
    find_package(Protobuf QUIET)
  endif()
  if(arg_GRPC AND NOT arg_LINK_LIBRARIES AND NOT TARGET gRPC::grpc++)
    find_package(gRPC CONFIG QUIET)
  endif()
  if(arg_GRPC AND NOT arg_GRPC_PLUGIN AND NOT TARGET gRPC::grpc_cpp_plugin
     AND NOT KEEL_GRPC_CPP_PLUGIN)
    find_package(gRPC CONFIG QUIET)
  endif()

  if(arg_PROTOC)
    set(_protoc "${arg_PROTOC}")
  elseif(TARGET protobuf::protoc)
    set(_protoc protobuf::protoc)
  elseif(Protobuf_PROTOC_EXECUTABLE)
    set(_protoc "${Protobuf_PROTOC_EXECUTABLE}")
  else()
    if(NOT KEEL_PROTOC)
      find_program(KEEL_PROTOC protoc)
    endif()
    if(NOT KEEL_PROTOC)
      message(FATAL_ERROR "${_fn}: protoc not found; install it, pass PROTOC or set KEEL_PROTOC "
        "(on Debian: apt-get install protobuf-compiler libprotobuf-dev)")
    endif()
    set(_protoc "${KEEL_PROTOC}")
  endif()

  set(_plugin "")
  if(arg_GRPC)
    if(arg_GRPC_PLUGIN)
      set(_plugin "${arg_GRPC_PLUGIN}")
    elseif(TARGET gRPC::grpc_cpp_plugin)
      set(_plugin gRPC::grpc_cpp_plugin)
    elseif(KEEL_GRPC_CPP_PLUGIN)
      set(_plugin "${KEEL_GRPC_CPP_PLUGIN}")
    else()
      find_program(KEEL_GRPC_CPP_PLUGIN grpc_cpp_plugin)
      if(NOT KEEL_GRPC_CPP_PLUGIN)
        message(FATAL_ERROR "${_fn}: GRPC needs grpc_cpp_plugin; install it or pass "
          "GRPC_PLUGIN (on Debian: apt-get install protobuf-compiler-grpc)")
      endif()
      set(_plugin "${KEEL_GRPC_CPP_PLUGIN}")
    endif()
  elseif(arg_GRPC_PLUGIN)
    message(FATAL_ERROR "${_fn}: GRPC_PLUGIN is given but GRPC is not")
  endif()

  if(arg_LINK_LIBRARIES)
    set(_link ${arg_LINK_LIBRARIES})
  else()
    if(NOT TARGET protobuf::libprotobuf)
      message(FATAL_ERROR "${_fn}: protobuf's library was not found (no "
        "protobuf::libprotobuf target after find_package(Protobuf)); install it (on Debian: "
        "apt-get install libprotobuf-dev), or name the libraries in LINK_LIBRARIES")
    endif()
    set(_link protobuf::libprotobuf)
    if(arg_GRPC)
      if(NOT TARGET gRPC::grpc++)
        message(FATAL_ERROR "${_fn}: gRPC++ was not found (no gRPC::grpc++ target after "
          "find_package(gRPC CONFIG)); install it (on Debian: apt-get install libgrpc++-dev), "
          "or name the libraries in LINK_LIBRARIES")
      endif()
      list(APPEND _link gRPC::grpc++)
    endif()
  endif()

  set(_import_dirs "")
  foreach(_dir IN LISTS arg_IMPORT_DIRS)
    cmake_path(ABSOLUTE_PATH _dir BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE)
    list(APPEND _import_dirs "${_dir}")
  endforeach()

  set(_generated "")
  foreach(_proto IN LISTS arg_PROTOS)
    cmake_path(ABSOLUTE_PATH _proto BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE)
    set(_roots ${_import_dirs})
    if(NOT _roots)
      cmake_path(GET _proto PARENT_PATH _roots)
    endif()
    set(_relative "")
    foreach(_root IN LISTS _roots)
      cmake_path(IS_PREFIX _root "${_proto}" NORMALIZE _inside)
      if(_inside)
        cmake_path(RELATIVE_PATH _proto BASE_DIRECTORY "${_root}" OUTPUT_VARIABLE _relative)
        break()
      endif()
    endforeach()
    if(_relative STREQUAL "")
      message(FATAL_ERROR "${_fn}: ${_proto} is under none of the IMPORT_DIRS (${_roots})")
    endif()
    string(REGEX REPLACE "\\.proto$" "" _stem "${_relative}")
    set(_cc "${arg_OUT_DIR}/${_stem}.pb.cc")
    set(_h "${arg_OUT_DIR}/${_stem}.pb.h")
    set(_depfile "${arg_OUT_DIR}/${_stem}.pb.d")
    list(TRANSFORM _roots PREPEND "-I" OUTPUT_VARIABLE _include_flags)
    set(_outputs "${_cc}" "${_h}")
    set(_grpc_flags "")
    set(_what "C++")
    if(arg_GRPC)
      list(APPEND _outputs "${arg_OUT_DIR}/${_stem}.grpc.pb.cc" "${arg_OUT_DIR}/${_stem}.grpc.pb.h")
      if(TARGET "${_plugin}")
        set(_plugin_path "$<TARGET_FILE:${_plugin}>")
      else()
        set(_plugin_path "${_plugin}")
      endif()
      set(_grpc_flags "--grpc_out=${arg_OUT_DIR}" "--plugin=protoc-gen-grpc=${_plugin_path}")
      set(_what "C++ and gRPC stubs")
    endif()
    add_custom_command(
      OUTPUT ${_outputs}
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${arg_OUT_DIR}"
      COMMAND ${_protoc} "--cpp_out=${arg_OUT_DIR}" ${_grpc_flags}
        "--dependency_out=${_depfile}" ${_include_flags} "${_proto}"
      DEPENDS "${_proto}" ${_protoc} ${_plugin}
      DEPFILE "${_depfile}"
      COMMENT "protoc: generating ${_what} from ${_relative}"
      VERBATIM)
    list(APPEND _generated ${_outputs})
  endforeach()

  target_sources(${arg_TARGET} PRIVATE ${_generated})
  target_include_directories(${arg_TARGET} ${arg_USAGE_REQUIREMENTS}
    "$<BUILD_INTERFACE:${arg_OUT_DIR}>")
  target_link_libraries(${arg_TARGET} ${arg_USAGE_REQUIREMENTS} ${_link})
endfunction()
