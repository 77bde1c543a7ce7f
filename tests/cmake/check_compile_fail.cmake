# Runs one compile-failure test: compiles SOURCE with COMPILER and succeeds
# only if the compiler fails AND its output matches the regular expression
# given on the source's first line as `// expect: <regex>` (CMake regex syntax).
#
#   cmake -DCOMPILER=c++ -DSOURCE=file.cpp [-DINCLUDE_DIRS="dir1|dir2"]
#         [-DDEFINITIONS="A=1|B"] [-DIMPLICIT_DIRS="dir|..."]
#         [-DEXTRA_FLAGS="flag1|flag2"] -P check_compile_fail.cmake
#
# Lists are separated by "|"; IMPLICIT_DIRS are left out of the -I flags.

cmake_minimum_required(VERSION 3.25)

foreach(_var COMPILER SOURCE)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check_compile_fail: ${_var} is not set")
  endif()
endforeach()
if(NOT EXISTS "${SOURCE}")
  message(FATAL_ERROR "check_compile_fail: ${SOURCE} does not exist")
endif()

file(READ "${SOURCE}" _head LIMIT 4096)
string(REGEX MATCH "^[^\n]*" _first "${_head}")
string(REGEX REPLACE "\r$" "" _first "${_first}")
if(NOT _first MATCHES "^[ \t]*//[ \t]*expect:[ \t]*(.*[^ \t])[ \t]*$")
  message(FATAL_ERROR "check_compile_fail: the first line of ${SOURCE} must be "
    "`// expect: <regex>` naming the diagnostic the compiler must print")
endif()
set(_expect "${CMAKE_MATCH_1}")

set(_args -std=c++20 -fsyntax-only -fdiagnostics-color=never)
string(REPLACE "|" ";" _dirs "${INCLUDE_DIRS}")
string(REPLACE "|" ";" _implicit "${IMPLICIT_DIRS}")
foreach(_dir IN LISTS _dirs)
  if(NOT _dir STREQUAL "" AND NOT _dir IN_LIST _implicit)
    list(APPEND _args "-I${_dir}")
  endif()
endforeach()
string(REPLACE "|" ";" _defs "${DEFINITIONS}")
foreach(_def IN LISTS _defs)
  if(NOT _def STREQUAL "")
    list(APPEND _args "-D${_def}")
  endif()
endforeach()
if(DEFINED EXTRA_FLAGS AND NOT EXTRA_FLAGS STREQUAL "")
  string(REPLACE "|" ";" _extra "${EXTRA_FLAGS}")
  list(APPEND _args ${_extra})
endif()

# LC_ALL=C: plain ASCII quotes in diagnostics, so regexes do not depend on the
# locale of the machine.
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env LC_ALL=C LANG=C "${COMPILER}" ${_args} "${SOURCE}"
  RESULT_VARIABLE _rc
  OUTPUT_VARIABLE _out
  ERROR_VARIABLE _out)

string(REPLACE ";" " " _cmdline "${COMPILER};${_args};${SOURCE}")
if(_rc EQUAL 0)
  message(FATAL_ERROR "check_compile_fail: ${SOURCE} compiled, but it must fail to "
    "compile with a diagnostic matching `${_expect}`.\ncommand: ${_cmdline}")
endif()
if(NOT _rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "check_compile_fail: could not run the compiler: ${_rc}\n"
    "command: ${_cmdline}")
endif()
if(NOT _out MATCHES "${_expect}")
  message(FATAL_ERROR "check_compile_fail: ${SOURCE} failed to compile, but not with a "
    "diagnostic matching `${_expect}`.\ncommand: ${_cmdline}\ncompiler output:\n${_out}")
endif()
message(STATUS "check_compile_fail: ${SOURCE} failed to compile as expected (`${_expect}`)")
