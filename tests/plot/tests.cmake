# `heapsnap plot` (src/render/plot*.c, src/cli/cmd_plot.c).
#  - make_plot_recording writes recordings with known answers;
#  - plot.cli: PNG/SVG/PDF of them have the asked size and parse, the SVG
#    names the processes, markers, snapshots and types, its structure
#    matches tests/plot/golden/*.txt (series, labels, axes: not pixels), is
#    the same bytes every time, stacked peaks agree with `heapsnap
#    timeline`, --from/--to, --json against formats/plot.schema.json, bad
#    inputs (one error line, exit 2 or 129, no file left behind).
# Tick and label helpers: tests/unit/test_plot.c. Under HEAPSNAP_SANITIZE the
# font stack's caches are suppressed as for the CLI tests (tests/cli/lsan.supp).
add_executable(make_plot_recording ${CMAKE_CURRENT_LIST_DIR}/make_plot_recording.c
  $<TARGET_OBJECTS:heapsnap_core>)
target_link_libraries(make_plot_recording PRIVATE heapsnap_core heapsnap_warnings m)

find_program(HS_PLOT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT HS_PLOT_PYTHON3)
  return()
endif()
add_test(NAME plot.cli COMMAND ${HS_PLOT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_plot.py)
set_tests_properties(plot.cli PROPERTIES LABELS cli TIMEOUT 600
  ENVIRONMENT "HEAPSNAP=$<TARGET_FILE:heapsnap_cli>;MAKE_PLOT_RECORDING=$<TARGET_FILE:make_plot_recording>;WORK=${CMAKE_CURRENT_BINARY_DIR}/plot-work;TZ=UTC;PYTHONDONTWRITEBYTECODE=1;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/../cli/lsan.supp:print_suppressions=0")
