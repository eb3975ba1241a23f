# `heapsnap dump PID --children` and snapshot sets (index files):
# - children.index: summary/diff of hand-written indexes around fixture
#   snapshots, and bad indexes (no Python needed);
# - python.children.<version>: real process trees on every interpreter the
#   hook was built for (multiprocessing pools with fork and spawn, a tree with
#   a non-Python child, a grandchild under a shell and a child dying during its
#   dump, failing and non-Python roots); needs ptrace (77 where forbidden);
# - python.children.gunicorn.<version>: gunicorn with 2 sync workers from a
#   pinned venv per interpreter (BUILD/children-venvs/, 77 when PyPI or a
#   wheel is missing).
# The driver runs under /usr/bin/python3 and never hands our package to the
# targets (no PYTHONPATH).
add_test(NAME children.index
  COMMAND ${HS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_index.py
    --cli $<TARGET_FILE:heapsnap_cli> --make-snapshot $<TARGET_FILE:make_snapshot>)
set_tests_properties(children.index PROPERTIES LABELS cli TIMEOUT 600)

if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS OR NOT EXISTS /usr/bin/python3)
  return()
endif()
set(_hs_children_tags "")
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    continue()
  endif()
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  if("${_v}" IN_LIST _hs_children_tags)
    continue()
  endif()
  list(APPEND _hs_children_tags ${_v})
  add_test(NAME python.children.${_v}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/run_children.py
      --cli $<TARGET_FILE:heapsnap_cli> --python ${_py})
  set_tests_properties(python.children.${_v} PROPERTIES LABELS python TIMEOUT 1200
    SKIP_RETURN_CODE 77 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  add_test(NAME python.children.gunicorn.${_v}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/run_children.py
      --cli $<TARGET_FILE:heapsnap_cli> --python ${_py} --build ${CMAKE_BINARY_DIR} --case gunicorn)
  set_tests_properties(python.children.gunicorn.${_v} PROPERTIES LABELS "python;slow" TIMEOUT 900
    SKIP_RETURN_CODE 77 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endforeach()
