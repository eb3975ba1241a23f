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

# Real libraries (issue 13, part 6): numpy's reported buffers without the
# interposer, allocations with the GIL released, torch on 3.11; each in a
# pinned venv made once under the build directory (skipped, 77, when the
# packages cannot be had).
find_program(HS_TRACK_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0 OR NOT HS_TRACK_PYTHON3)
    continue()
  endif()
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.track_libs.${_v}
    COMMAND ${HS_TRACK_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/track_libs.py ${CMAKE_BINARY_DIR} ${_py})
  set_tests_properties(python.track_libs.${_v} PROPERTIES LABELS "python;slow" TIMEOUT 1800
    SKIP_RETURN_CODE 77 DEPENDS heapsnap_preload)
endforeach()
