# `heapsnap dump PID` (src/attach/): real targets that import nothing of
# ours, on every interpreter the hook was built for. Needs ptrace: skipped
# (exit 77) where the kernel forbids it.
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
  add_test(NAME python.attach.${_v}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/run_attach.py
      --cli $<TARGET_FILE:heapsnap_cli> --python ${_py})
  # the driver must not hand our package to the targets: no PYTHONPATH
  set_tests_properties(python.attach.${_v} PROPERTIES LABELS python TIMEOUT 1800  # a hang detector
    SKIP_RETURN_CODE 77 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endforeach()

# Fault injection: heapsnap killed (SIGTERM, SIGKILL) at every phase of a
# dump and at seeded random moments, in-process, fork and --children modes;
# the target must survive and still run Python. On 3.8, 3.11 and 3.13 (the
# issue's matrix; Debian's python3 included): about 20-60 s each.
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0 OR NOT _v MATCHES "^3\\.(8|11|13)\\.")
    continue()
  endif()
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.attach.faults.${_v}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/fault_inject.py
      --cli $<TARGET_FILE:heapsnap_cli> --python ${_py})
  set_tests_properties(python.attach.faults.${_v} PROPERTIES LABELS python TIMEOUT 900
    SKIP_RETURN_CODE 77 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endforeach()
