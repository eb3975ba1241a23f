# Corrupt-input tests: every damaged snapshot gives exit 2 and one error line.
file(GLOB _hs_seed_snapshots ${PROJECT_SOURCE_DIR}/fixtures/snapshots/*.hsnap)
foreach(_snap ${_hs_seed_snapshots})
  get_filename_component(_n ${_snap} NAME_WE)
  add_test(NAME corrupt.sweep.${_n}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/sweep.py $<TARGET_FILE:heapsnap_cli> ${_snap})
  set_tests_properties(corrupt.sweep.${_n} PROPERTIES LABELS corrupt TIMEOUT 900)
endforeach()
# Indexes of snapshot sets (formats/index-v1.md), damaged the same way.
file(GLOB _hs_seed_indexes ${PROJECT_SOURCE_DIR}/fixtures/indexes/*.hsidx)
foreach(_idx ${_hs_seed_indexes})
  get_filename_component(_n ${_idx} NAME_WE)
  add_test(NAME corrupt.sweep.index.${_n}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/sweep.py $<TARGET_FILE:heapsnap_cli> ${_idx})
  set_tests_properties(corrupt.sweep.index.${_n} PROPERTIES LABELS corrupt TIMEOUT 900)
endforeach()
