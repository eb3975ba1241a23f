# `heapsnap record --lines`, `heapsnap lines`, `heapsnap flamegraph` (issue 8
# phase 2): lines.cli (bad inputs, usage) on any build, and
# python.lines.<version>: fixture programs with known answers on every
# interpreter the hook was built for (exact and sampled figures, the peak,
# threads, fork, --pid start/stop, a numpy buffer under --native).
find_program(HS_LINES_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT HS_LINES_PYTHON3)
  return()
endif()
set(_hs_lines_env
  HEAPSNAP=$<TARGET_FILE:heapsnap_cli>
  HS_PYTHON_DIR=${CMAKE_BINARY_DIR}/python
  WORK=${CMAKE_CURRENT_BINARY_DIR}/lines-work
  PYTHONDONTWRITEBYTECODE=1)
add_test(NAME lines.cli COMMAND ${HS_LINES_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_lines.py cli)
set_tests_properties(lines.cli PROPERTIES LABELS cli TIMEOUT 600 ENVIRONMENT "${_hs_lines_env}")

if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS)
  return()
endif()
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    continue()
  endif()
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.lines.${_v}
    COMMAND ${HS_LINES_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_lines.py python --python ${_py})
  set_tests_properties(python.lines.${_v} PROPERTIES LABELS "python;slow" TIMEOUT 1200
    ENVIRONMENT "${_hs_lines_env}")
endforeach()
