# Integration tests: fixture programs run under the hook by every interpreter
# the hook was built for (HS_PY_TEST_INTERPRETERS, see cmake/python_hook.cmake),
# answers checked through `heapsnap ... --json` and tests/integration/hsnap.py.
# Labels: python (all), slow (the long ones). A test that cannot run here
# (numpy or a third-party package missing) exits 77: ctest reports it skipped
# with the reason in its output.
# Damaged inputs, made on the fly from a real snapshot (or, without the hook,
# from fixtures/snapshots/synthetic-small.hsnap): also runs in the ASan build.
if(EXISTS /usr/bin/python3)
  add_test(NAME corrupt.cases COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/corrupt_cases.py
    --cli $<TARGET_FILE:heapsnap_cli> --build ${CMAKE_BINARY_DIR})
  set_tests_properties(corrupt.cases PROPERTIES LABELS "corrupt;python" TIMEOUT 1200
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1")
endif()

if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS)
  message(STATUS "heapsnap: no Python interpreter to test the hook with: integration tests skipped")
  return()
endif()

set(_it ${CMAKE_CURRENT_LIST_DIR})
set(_it_common --cli $<TARGET_FILE:heapsnap_cli> --build ${CMAKE_BINARY_DIR})
set(_it_env PYTHONPATH=${CMAKE_BINARY_DIR}/python PYTHONDONTWRITEBYTECODE=1)
set(_it_cases collect thread chain cycles freeze sizes files unwritable roots weak)

# TIMEOUTs are hang detectors, far above an idle run: a loaded machine (load
# 10-25 on 2 cores) makes these tests 5-10 times slower, which is not a failure
function(_hs_it_test name labels timeout)
  add_test(NAME ${name} COMMAND ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT ${timeout}
    ENVIRONMENT "${_it_env}" SKIP_RETURN_CODE 77)
endfunction()

set(_it_tags "")
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    message(STATUS "heapsnap: integration tests skip ${_py}: it does not run")
    continue()
  endif()
  string(FIND "${_py}" "/usr/bin/" _sys)
  if(_sys EQUAL 0)
    set(_tag "${_v}-system")
  else()
    set(_tag "${_v}")
  endif()
  if("${_tag}" IN_LIST _it_tags)
    continue()
  endif()
  list(APPEND _it_tags ${_tag})

  _hs_it_test(python.known_heap.${_tag} python 900
    ${_py} ${_it}/run_known_heap.py ${_it_common})
  foreach(_case ${_it_cases})
    set(_labels python)
    set(_timeout 900)
    if(_case STREQUAL "chain")
      set(_labels "python;slow")
      set(_timeout 1200)  # a hang detector: the chain's commands on a loaded machine
    endif()
    _hs_it_test(python.hook.${_case}.${_tag} "${_labels}" ${_timeout}
      ${_py} ${_it}/run_hook_cases.py ${_it_common} ${_case})
  endforeach()
  _hs_it_test(python.runner.${_tag} "python;slow" 900
    ${_py} ${_it}/run_runner.py ${_it_common})
  _hs_it_test(python.retention.${_tag} python 900
    ${_py} ${_it}/run_retention.py ${_it_common})
  _hs_it_test(python.numpy.${_tag} python 900
    ${_py} ${_it}/run_numpy.py ${_it_common})
endforeach()

string(REPLACE ";" " " _it_list "${_it_tags}")
message(STATUS "heapsnap: integration tests for Python ${_it_list}")

if(NOT EXISTS /usr/bin/python3)
  message(STATUS "heapsnap: no /usr/bin/python3: interpreter list and real-program tests skipped")
  return()
endif()
_hs_it_test(python.interpreters python 600
  /usr/bin/python3 ${_it}/run_interpreters.py ${_it_common} --tested ${HS_PY_TEST_INTERPRETERS})
# A real program's object graph (SQLAlchemy + Flask) in a venv under the
# build tree, made from pinned wheels by setup_venv.py (skipped when the
# packages cannot be had).
_hs_it_test(python.real_program "python;slow" 1800
  /usr/bin/python3 ${_it}/run_real_program.py ${_it_common})
