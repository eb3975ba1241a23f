# Native buffers owned by objects (src/hook/native.c), checked through the
# hook's test aid heapsnap._heapsnap._native_buffers against each library's
# own answers, and end to end through real dumps (native_dump.py: in-process
# and fork mode, read back by tests/integration/hsnap.py and summary --json).
# The standard library case runs on every interpreter the hook
# was built for; numpy 1.x, numpy 2.x + pandas and torch run in pinned venvs
# (venv_run.py, cached under the build dir) made by a 3.11 interpreter (the
# torch wheel on this machine is cp311); no venv or no package: skipped (77).
if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS)
  return()
endif()
set(_nt_env "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1;HS_CLI=$<TARGET_FILE:heapsnap_cli>")
set(_nt_py311 "")
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    continue()
  endif()
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  if(_v MATCHES "^3\\.11\\." AND (_nt_py311 STREQUAL "" OR _py STREQUAL "/usr/bin/python3"))
    set(_nt_py311 ${_py})
  endif()
  add_test(NAME python.native.stdlib.${_v} COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/native_stdlib.py)
  set_tests_properties(python.native.stdlib.${_v} PROPERTIES LABELS python TIMEOUT 300
    ENVIRONMENT "${_nt_env}" SKIP_RETURN_CODE 77)
endforeach()
if(_nt_py311 STREQUAL "")
  return()
endif()
# venv name -> test scripts run in it
foreach(_case "numpy1;native_numpy" "numpy2;native_numpy" "numpy1;native_object_arrays" "numpy2;native_object_arrays"
    "torch;native_torch" "torch;native_dump")
  list(GET _case 0 _venv)
  list(GET _case 1 _script)
  add_test(NAME python.native.${_venv}.${_script} COMMAND /usr/bin/env ${_nt_py311} ${CMAKE_CURRENT_LIST_DIR}/venv_run.py
    ${CMAKE_BINARY_DIR} ${_nt_py311} ${_venv} ${CMAKE_CURRENT_LIST_DIR}/${_script}.py)
  set_tests_properties(python.native.${_venv}.${_script} PROPERTIES LABELS "python;slow" TIMEOUT 2400
    ENVIRONMENT "${_nt_env}" SKIP_RETURN_CODE 77)
endforeach()
