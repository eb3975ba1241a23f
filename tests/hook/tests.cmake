# Hook tests of the lead's: each script runs on every interpreter the build
# tests, with the package of this build on PYTHONPATH.
function(hs_hook_test name script)
  # ARGN: extra arguments for the script (after the interpreter's own flags)
  cmake_parse_arguments(T "" "" "PYFLAGS;ARGS" ${ARGN})
  foreach(_py ${HS_PY_TEST_INTERPRETERS})
    execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
      OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(_py STREQUAL "/usr/bin/python3")
      set(_v "${_v}-system")
    endif()
    add_test(NAME python.${name}.${_v}
      COMMAND ${_py} ${T_PYFLAGS} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script} ${T_ARGS})
    set_tests_properties(python.${name}.${_v} PROPERTIES LABELS python SKIP_RETURN_CODE 77
      ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python")
  endforeach()
endfunction()

hs_hook_test(numpy_view_base numpy_view_base.py)
hs_hook_test(main_module_paths main_module_paths.py ARGS $<TARGET_FILE:heapsnap_cli>)
hs_hook_test(main_thread_name main_thread_name.py PYFLAGS -S ARGS $<TARGET_FILE:heapsnap_cli>)
hs_hook_test(python_sizeof python_sizeof.py ARGS $<TARGET_FILE:heapsnap_cli>)
