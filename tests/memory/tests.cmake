# Where the RSS goes (issue 13 part 4): META memory (src/hook/memory.c,
# util/memstats.c) and `heapsnap summary`'s breakdown (analysis/rss.c,
# render/rss.c), on real processes of every interpreter the hook was built
# for and on synthetic snapshots with exact figures (tests/memory/fixtures).
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
  add_test(NAME python.memory.${_v} COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/memory_tests.py)
  set_tests_properties(python.memory.${_v} PROPERTIES LABELS python TIMEOUT 900
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1;HEAPSNAP=$<TARGET_FILE:heapsnap_cli>;MAKE_SNAPSHOT=$<TARGET_FILE:make_snapshot>;SCHEMA_DIR=${PROJECT_SOURCE_DIR}/formats;VALIDATE=${CMAKE_CURRENT_LIST_DIR}/../integration/validate_json.py;FIXTURES=${CMAKE_CURRENT_LIST_DIR}/fixtures;OLD_SNAPSHOTS=${PROJECT_SOURCE_DIR}/fixtures/snapshots/seed-py311.hsnap,${PROJECT_SOURCE_DIR}/fixtures/snapshots/synthetic-small.hsnap")
endforeach()
