# Allocation tracking (src/hook/track*.c, heapsnap/track.py, the LD_PRELOAD
# interposer src/track/preload.c) on every interpreter the hook was built for.
# In-process use: our package is on PYTHONPATH.
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
  add_test(NAME python.track.${_v} COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/track_tests.py)
  set_tests_properties(python.track.${_v} PROPERTIES LABELS python TIMEOUT 1200
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1")
  add_test(NAME python.track_native.${_v} COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/track_native.py)
  set_tests_properties(python.track_native.${_v} PROPERTIES LABELS python TIMEOUT 900
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1;LD_PRELOAD=$<TARGET_FILE:heapsnap_preload>")
endforeach()
