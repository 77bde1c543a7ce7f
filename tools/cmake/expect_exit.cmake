# Runs COMMAND (a ;-list) and fails unless it exits with EXPECT: a ctest
# check of an exit status more precise than WILL_FAIL, which a crash passes.
#
#   cmake -DCOMMAND=<prog;args...> -DEXPECT=<status> -P expect_exit.cmake
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
if(NOT "${_rc}" STREQUAL "${EXPECT}")
  message(FATAL_ERROR "expected exit status ${EXPECT}, got '${_rc}'\nstdout:\n${_out}\nstderr:\n${_err}")
endif()
message(STATUS "exit status ${_rc} as expected; stderr: ${_err}")
