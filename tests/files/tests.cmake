# What heapsnap creates and what it reads (src/util/file.c), driven by
# run_files.py with /usr/bin/python3:
#  - files.planted: symbolic links planted by another user (uid 65534) in a
#    1777 directory at every name heapsnap writes; the victim stays untouched,
#    files are created 0600 (root and setpriv, else skipped with status 77);
#  - files.special: FIFO, socket, /dev/null, directory to every reading
#    command: exit 2 at once, one line naming the file;
#  - files.cut: a recording cut at every byte of its last kilobyte reads back;
#  - files.stale: leftovers of dead writers cleaned by the next one (the same
#    user's only), a stale fork-mode status file, a full disk during record.

find_program(HS_FILES_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT HS_FILES_PYTHON3)
  return()
endif()
set(_hs_files_args --cli $<TARGET_FILE:heapsnap_cli>)
# the parts with Python targets (heapsnap.dump, run, dump PID) need the hook
if(HEAPSNAP_BUILD_PYTHON AND "/usr/bin/python3" IN_LIST HS_PY_TEST_INTERPRETERS)
  list(APPEND _hs_files_args --python /usr/bin/python3 --pkg ${CMAKE_BINARY_DIR}/python)
endif()
# LSAN_OPTIONS: the font stack's caches (plot, graph) as for the CLI tests
foreach(_t planted special cut stale)
  add_test(NAME files.${_t}
    COMMAND ${HS_FILES_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_files.py ${_hs_files_args} ${_t})
  set_tests_properties(files.${_t} PROPERTIES LABELS "cli;files" TIMEOUT 300
    SKIP_RETURN_CODE 77 ENVIRONMENT
    "PYTHONDONTWRITEBYTECODE=1;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/../cli/lsan.supp:print_suppressions=0")
endforeach()
