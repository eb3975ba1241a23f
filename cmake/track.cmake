# libheapsnap_preload.so: the LD_PRELOAD interposer that lets the allocation
# tracker (src/hook/track*.c) see native memory (src/track/preload.c). It is
# loaded into Python processes started by `heapsnap record --native`; it
# links nothing of ours and is inert until the hook turns tracking on.
add_library(heapsnap_preload SHARED ${PROJECT_SOURCE_DIR}/src/track/preload.c)
target_include_directories(heapsnap_preload PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(heapsnap_preload PRIVATE ${CMAKE_DL_LIBS} Threads::Threads heapsnap_warnings)
# -fno-builtin: its malloc/free must not be folded into calls to themselves.
target_compile_options(heapsnap_preload PRIVATE -fno-builtin -fno-sanitize=all)
set_target_properties(heapsnap_preload PROPERTIES OUTPUT_NAME heapsnap_preload
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
if(SKBUILD)
  install(TARGETS heapsnap_preload LIBRARY DESTINATION heapsnap)
else()
  install(TARGETS heapsnap_preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/heapsnap)
endif()
