# The production agent (heapsnap.agent, src/hook/stats.c, trigger.c; the
# client src/attach/agent.c; `heapsnap stats`), on every interpreter the
# hook was built for. The driver is /usr/bin/python3 (jsonschema); the
# targets run on each interpreter and get our package only when they use
# it in-process (or the _bootstrap directory alone, for HEAPSNAP_AGENT).
# The client against a hostile agent (a test program on the socket): needs
# no hook, only the CLI and /usr/bin/python3.
if(EXISTS /usr/bin/python3)
  add_test(NAME agent.hostile
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/hostile_agent.py
      --cli $<TARGET_FILE:heapsnap_cli>
      --fixture ${PROJECT_SOURCE_DIR}/fixtures/snapshots/synthetic-small.hsnap)
  set_tests_properties(agent.hostile PROPERTIES LABELS "cli;agent" TIMEOUT 600)
endif()
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
  add_test(NAME python.agent.${_v}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/run_agent.py
      --cli $<TARGET_FILE:heapsnap_cli> --python ${_py} --package ${CMAKE_BINARY_DIR}/python)
  set_tests_properties(python.agent.${_v} PROPERTIES LABELS python TIMEOUT 900
    SKIP_RETURN_CODE 77 ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  # the agent's options, good and bad, in start(), HEAPSNAP_AGENT and
  # python -m heapsnap.agent; stale sockets; the C handler's own refusals
  add_test(NAME python.agent_options.${_v}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/run_options.py
      --python ${_py} --package ${CMAKE_BINARY_DIR}/python)
  set_tests_properties(python.agent_options.${_v} PROPERTIES LABELS python TIMEOUT 900
    ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endforeach()
