# Real object sizes (format 1.1: src/hook/blocks.c) against tracemalloc, on
# every interpreter the hook was built for; in-process and fork mode.
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
  add_test(NAME python.sizes.${_v} COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/sizes_tests.py)
  set_tests_properties(python.sizes.${_v} PROPERTIES LABELS python TIMEOUT 900
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1")
endforeach()
