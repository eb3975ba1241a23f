# Real-world programs (tests/realworld/programs/) run under the hook: stdlib
# ones on every interpreter the hook was built for; third-party ones (pinned
# requirements-<name>.txt, a venv per interpreter cached under
# BUILD/realworld-venvs/, skipped with 77 when PyPI or a wheel is missing) on
# Debian's python3 (assertions on) and the newest pyenv interpreter.
# Labels: python, plus slow for the long ones.
if(NOT HEAPSNAP_BUILD_PYTHON OR NOT HS_PY_TEST_INTERPRETERS OR NOT EXISTS /usr/bin/python3)
  return()
endif()

set(_rw ${CMAKE_CURRENT_LIST_DIR})
function(_hs_rw_test name labels py program)
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${_rw}/run.py --cli $<TARGET_FILE:heapsnap_cli>
    --build ${CMAKE_BINARY_DIR} --python ${py} --program ${program} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT 2400 SKIP_RETURN_CODE 77)  # a hang detector (venv + run)
endfunction()

set(_rw_tags "")
set(_rw_newest "")
foreach(_py ${HS_PY_TEST_INTERPRETERS})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    continue()
  endif()
  string(FIND "${_py}" "/usr/bin/" _sys)
  if(_sys EQUAL 0)
    set(_tag "${_v}-system")
  else()
    set(_tag "${_v}")
    if(NOT _rw_newest OR _v VERSION_GREATER _rw_newest_v)
      set(_rw_newest ${_py})
      set(_rw_newest_v ${_v})
    endif()
  endif()
  if("${_tag}" IN_LIST _rw_tags)
    continue()
  endif()
  list(APPEND _rw_tags ${_tag})
  foreach(_p stdlib_zoo layouts odd_contexts)
    _hs_rw_test(realworld.${_p}.${_tag} python ${_py} ${_p}.py)
  endforeach()
  _hs_rw_test(realworld.threads_hammer.${_tag} "python;slow" ${_py} threads_hammer.py)
endforeach()

set(_rw_thirdparty /usr/bin/python3 ${_rw_newest})
list(REMOVE_DUPLICATES _rw_thirdparty)
foreach(_py ${_rw_thirdparty})
  execute_process(COMMAND ${_py} -c "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    OUTPUT_VARIABLE _v OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_py STREQUAL "/usr/bin/python3")
    set(_v "${_v}-system")
  endif()
  foreach(_pair pandas_frames:pandas django_orm:django fastapi_server:fastapi flask_sqlalchemy:web)
    string(REPLACE ":" ";" _pair "${_pair}")
    list(GET _pair 0 _prog)
    list(GET _pair 1 _req)
    _hs_rw_test(realworld.${_prog}.${_v} "python;slow" ${_py} ${_prog}.py
      --requirements ${_rw}/requirements-${_req}.txt)
  endforeach()
  # Today's live-process features driven from outside, as a user would:
  # the agent in uvicorn under load (stats, dump fork/--no-fork), gunicorn
  # under `record --snapshot-every` (timeline, plot, snapshots), a pandas
  # Pool under `record --lines` (lines, flamegraph), and `dump --children`
  # of Django's autoreloading runserver.
  foreach(_pair fastapi_agent:fastapi gunicorn_record:web+gunicorn pandas_pool_lines:pandas
          django_runserver_children:django)
    string(REPLACE ":" ";" _pair "${_pair}")
    list(GET _pair 0 _prog)
    list(GET _pair 1 _reqs)
    string(REPLACE "+" ";" _reqs "${_reqs}")
    set(_args "")
    foreach(_r ${_reqs})
      if(_r STREQUAL "gunicorn")
        list(APPEND _args --requirements ${_rw}/../children/requirements-gunicorn.txt)
      else()
        list(APPEND _args --requirements ${_rw}/requirements-${_r}.txt)
      endif()
    endforeach()
    _hs_rw_test(realworld.${_prog}.${_v} "python;slow" ${_py} ${_prog}.py ${_args})
  endforeach()
endforeach()
