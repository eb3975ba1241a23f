# Data-driven CLI tests (tests/cli/cases.txt, driver tests/cli/run.py),
# label `cli`. make_snapshot writes the fixture heaps from
# tests/cli/fixtures/*.txt; the cli.prepare test builds them (and damaged
# variants) before the cases run.
add_executable(make_snapshot ${CMAKE_CURRENT_LIST_DIR}/make_snapshot.c $<TARGET_OBJECTS:heapsnap_core>)
target_link_libraries(make_snapshot PRIVATE heapsnap_core heapsnap_warnings)

set(_hs_cli_env
  HEAPSNAP=$<TARGET_FILE:heapsnap_cli>
  MAKE_SNAPSHOT=$<TARGET_FILE:make_snapshot>
  FIXTURES=${CMAKE_CURRENT_BINARY_DIR}/cli-fixtures
  LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp:print_suppressions=0)
find_program(HS_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT HS_PYTHON3)
  find_program(HS_PYTHON3 python3 REQUIRED)
endif()

add_test(NAME cli.prepare COMMAND ${HS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run.py prepare)
set_tests_properties(cli.prepare PROPERTIES LABELS cli FIXTURES_SETUP hs_cli_fixtures
  ENVIRONMENT "${_hs_cli_env}")

file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/cases.txt _hs_cli_lines)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/cases.txt)
foreach(_line IN LISTS _hs_cli_lines)
  # a case line starts with its name and a '|'; CMake splits lines at ';'
  # (the checks), so fragments of a line must not look like cases
  if(_line MATCHES "^[ \t]*#" OR NOT _line MATCHES "^[ \t]*[a-z0-9][a-z0-9-]*[ \t]*\\|")
    continue()
  endif()
  string(REGEX REPLACE "^[ \t]*([a-z0-9][a-z0-9-]*).*" "\\1" _case "${_line}")
  add_test(NAME cli.${_case} COMMAND ${HS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run.py case ${_case})
  set_tests_properties(cli.${_case} PROPERTIES LABELS cli FIXTURES_REQUIRED hs_cli_fixtures
    ENVIRONMENT "${_hs_cli_env}")
endforeach()
