# Hook tests of the lead's: run on every interpreter the build tests.
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.numpy_view_base.${_v}
    COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/numpy_view_base.py)
  set_tests_properties(python.numpy_view_base.${_v} PROPERTIES LABELS python SKIP_RETURN_CODE 77
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python")
endforeach()

foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.main_module_paths.${_v}
    COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/main_module_paths.py $<TARGET_FILE:heapsnap_cli>)
  set_tests_properties(python.main_module_paths.${_v} PROPERTIES LABELS python
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python")
endforeach()

foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.main_thread_name.${_v}
    COMMAND ${_py} -S ${CMAKE_CURRENT_LIST_DIR}/main_thread_name.py $<TARGET_FILE:heapsnap_cli>)
  set_tests_properties(python.main_thread_name.${_v} PROPERTIES LABELS python SKIP_RETURN_CODE 77
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python")
endforeach()

foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.python_sizeof.${_v}
    COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/python_sizeof.py $<TARGET_FILE:heapsnap_cli>)
  set_tests_properties(python.python_sizeof.${_v} PROPERTIES LABELS python
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python")
endforeach()
