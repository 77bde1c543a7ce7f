# Runs one packaging test: builds the consumer project in consumer/ against
# keel and runs its programs. Called by ctest as `cmake -P` with:
#
#   MODE          install: install KEEL_BUILD_DIR into SCRATCH/prefix and
#                 find_package(keel) there; also checks that asking for a
#                 component keel does not have fails cleanly.
#                 subdirectory: add_subdirectory(KEEL_SOURCE_DIR).
#   KEEL_SOURCE_DIR, KEEL_BUILD_DIR
#   SCRATCH       a directory of this test's own, wiped first
#   COMPONENTS    |-separated keel components the consumer must get
#   GENERATOR, MAKE_PROGRAM, CXX_COMPILER, BUILD_TYPE, JOBS
#                 as keel's own build, so the consumer builds the same way
cmake_minimum_required(VERSION 3.25)

foreach(_var MODE KEEL_SOURCE_DIR KEEL_BUILD_DIR SCRATCH GENERATOR CXX_COMPILER JOBS)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer: ${_var} is required")
  endif()
endforeach()
# "|" on the command line too: a ";" would split the argument in two.
set(components_arg "${COMPONENTS}")
string(REPLACE "|" ";" COMPONENTS "${COMPONENTS}")

# Runs a command, echoing it; stops the test with its output on failure.
function(step what)
  message(STATUS "packaging: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "packaging: ${what} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${SCRATCH}")
file(MAKE_DIRECTORY "${SCRATCH}")

set(consumer_args
  -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
  "-DKEEL_CONSUMER_COMPONENTS=${components_arg}")
if(MAKE_PROGRAM)
  list(APPEND consumer_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

if(MODE STREQUAL "install")
  set(prefix "${SCRATCH}/prefix")
  step("installing keel into ${prefix}"
    "${CMAKE_COMMAND}" --install "${KEEL_BUILD_DIR}" --prefix "${prefix}"
      --component keel_development)
  list(APPEND consumer_args -DKEEL_CONSUMER_MODE=package "-DCMAKE_PREFIX_PATH=${prefix}")

  # A component keel does not have must fail find_package with a message
  # that names it, not pass or fail somewhere later.
  set(probe "${SCRATCH}/probe")
  file(WRITE "${probe}/CMakeLists.txt" [=[
cmake_minimum_required(VERSION 3.25)
project(probe LANGUAGES CXX)
find_package(keel CONFIG REQUIRED COMPONENTS no_such_component)
]=])
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${probe}" -B "${probe}/build" -G "${GENERATOR}"
      "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0 OR NOT out MATCHES "no_such_component")
    message(FATAL_ERROR "packaging: find_package(keel COMPONENTS no_such_component) should "
      "fail and name the component (exit ${rc}):\n${out}")
  endif()
  message(STATUS "packaging: an unknown component fails find_package, as it should")
elseif(MODE STREQUAL "subdirectory")
  list(APPEND consumer_args -DKEEL_CONSUMER_MODE=subdirectory
    "-DKEEL_SOURCE_DIR=${KEEL_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run_consumer: MODE must be install or subdirectory, not '${MODE}'")
endif()

set(build "${SCRATCH}/build")
step("configuring the consumer (${MODE})"
  "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}/consumer" -B "${build}" ${consumer_args})
set(config_args "")
if(BUILD_TYPE)
  set(config_args --config "${BUILD_TYPE}")  # for multi-config generators
endif()
step("building the consumer"
  "${CMAKE_COMMAND}" --build "${build}" --parallel "${JOBS}" ${config_args})

set(programs consumer_core)
if("grpc" IN_LIST COMPONENTS)
  list(APPEND programs consumer_grpc consumer_proto)
endif()
if("spdlog" IN_LIST COMPONENTS)
  list(APPEND programs consumer_spdlog)
endif()
foreach(program IN LISTS programs)
  set(path "${build}/${program}")
  if(BUILD_TYPE AND EXISTS "${build}/${BUILD_TYPE}/${program}${CMAKE_EXECUTABLE_SUFFIX}")
    set(path "${build}/${BUILD_TYPE}/${program}")
  endif()
  step("running ${program}" "${path}")
  message(STATUS "packaging: ${step_output}")
endforeach()
