# `heapsnap record`, recordings and `heapsnap timeline` (formats/recording-v1.md).
#  - record.fixtures: make_recording writes the known-answer recordings and
#    they must equal the shipped fixtures/recordings/*.hsrec byte for byte
#    (a format change shows up here first);
#  - record.cli: timeline/info on those fixtures (golden text, JSON against
#    formats/timeline.schema.json, exact figures), damaged files;
#  - python.record.<version>: real recordings of fixture programs on every
#    interpreter the hook was built for (phases, children by fork, spawn
#    and exec, exit statuses, --pid, a SIGKILLed recorder, markers).
add_executable(make_recording ${CMAKE_CURRENT_LIST_DIR}/make_recording.c $<TARGET_OBJECTS:heapsnap_core>)
target_link_libraries(make_recording PRIVATE heapsnap_core heapsnap_warnings m)

find_program(HS_REC_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT HS_REC_PYTHON3)
  return()
endif()
set(_hs_rec_env
  HEAPSNAP=$<TARGET_FILE:heapsnap_cli>
  MAKE_RECORDING=$<TARGET_FILE:make_recording>
  WORK=${CMAKE_CURRENT_BINARY_DIR}/record-work
  TZ=UTC
  PYTHONDONTWRITEBYTECODE=1)
foreach(_t fixtures cli)
  add_test(NAME record.${_t}
    COMMAND ${HS_REC_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_record.py ${_t})
  set_tests_properties(record.${_t} PROPERTIES LABELS cli TIMEOUT 600
    ENVIRONMENT "${_hs_rec_env}")
endforeach()

if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS)
  return()
endif()
# the recorder's socket directories: removed at every end it sees, and
# after a SIGKILL by the next recorder (tests/record/stale_dirs.py)
add_test(NAME python.record.stale_dirs
  COMMAND ${HS_REC_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/stale_dirs.py
    --cli $<TARGET_FILE:heapsnap_cli> --python ${HS_REC_PYTHON3})
set_tests_properties(python.record.stale_dirs PROPERTIES LABELS python TIMEOUT 600
  ENVIRONMENT "${_hs_rec_env}")
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    continue()
  endif()
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  add_test(NAME python.record.${_v}
    COMMAND ${HS_REC_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_record.py python --python ${_py})
  # the driver must not hand our package to the targets: no PYTHONPATH
  set_tests_properties(python.record.${_v} PROPERTIES LABELS "python;slow" TIMEOUT 1200
    ENVIRONMENT "${_hs_rec_env}")
endforeach()

# Children forked at once get the agent (the recorder once gave up on a
# child that still held its parent's socket): a recorder bug, one interpreter.
if(HEAPSNAP_BUILD_PYTHON AND EXISTS /usr/bin/python3)
  add_test(NAME python.record.fork_agents
    COMMAND ${HS_REC_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/fork_agents.py
      --cli $<TARGET_FILE:heapsnap_cli> --python /usr/bin/python3)
  set_tests_properties(python.record.fork_agents PROPERTIES LABELS python TIMEOUT 1800
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python;PYTHONDONTWRITEBYTECODE=1")
endif()
