# Retention integration tests: fixture programs (tests/retention/programs/)
# dump their heap through the hook under every interpreter it was built for
# (HS_PY_TEST_INTERPRETERS); run_retention.py checks exact answers of
# `heapsnap paths/retained/dominators/garbage/leaks/graph --json`.
# Labels: python; exit 77 = skipped (the hook does not import).
if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS)
  message(STATUS "heapsnap: no Python interpreter to test the hook with: retention tests skipped")
  return()
endif()

set(_rt ${CMAKE_CURRENT_LIST_DIR})
set(_rt_cases module_dict class_attr closure_cell thread_local lru_cache weak_only gc_cycles
  bytearray_owner leaks churn)
set(_rt_tags "")
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d' % sys.version_info[:2])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    continue()
  endif()
  string(FIND "${_py}" "/usr/bin/" _sys)
  if(_sys EQUAL 0)
    set(_v "${_v}-system")
  endif()
  if("${_v}" IN_LIST _rt_tags)
    continue()
  endif()
  list(APPEND _rt_tags ${_v})
  set(_cases ${_rt_cases} import_cost)
  # SQLAlchemy comes from a venv of /usr/bin/python3 (tests/integration/setup_venv.py)
  if("${_v}" STREQUAL "3.11-system")
    list(APPEND _cases orm_identity_map)
  endif()
  foreach(_case ${_cases})
    add_test(NAME retention.${_case}.${_v}
      COMMAND /usr/bin/python3 ${_rt}/run_retention.py --cli $<TARGET_FILE:heapsnap_cli>
        --python ${_py} --case ${_case})
    set_tests_properties(retention.${_case}.${_v} PROPERTIES LABELS python TIMEOUT 1200
      ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1"
      SKIP_RETURN_CODE 77)
  endforeach()
endforeach()
