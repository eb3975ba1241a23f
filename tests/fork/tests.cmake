# Fork-mode snapshots (src/hook/fork.c): heapsnap.dump(path, fork=True) and
# `heapsnap dump PID --fork`, on every interpreter the hook was built for.
if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS OR NOT EXISTS /usr/bin/python3)
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
  add_test(NAME python.fork_dump.${_v}
    COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/fork_dump.py $<TARGET_FILE:heapsnap_cli>)
  set_tests_properties(python.fork_dump.${_v} PROPERTIES LABELS python TIMEOUT 900
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1")
  # the targets import nothing of ours: no PYTHONPATH
  add_test(NAME python.fork_attach.${_v}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/fork_attach.py
      --cli $<TARGET_FILE:heapsnap_cli> --python ${_py})
  set_tests_properties(python.fork_attach.${_v} PROPERTIES LABELS python TIMEOUT 900
    SKIP_RETURN_CODE 77 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endforeach()
