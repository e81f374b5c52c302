# kiln_library(NAME DEPS...): a static library from every *.cc in the calling
# folder except *_test.cc, plus one GoogleTest binary NAME_test from the
# *_test.cc files. Globbing keeps "one concept per file" cheap: add a file,
# re-run cmake (CONFIGURE_DEPENDS does it for you).
function(kiln_library name)
  cmake_parse_arguments(L "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(tests)
    list(REMOVE_ITEM srcs ${tests})
  endif()
  if(NOT srcs)  # a part with headers only (so far)
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${name} INTERFACE ${L_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${L_DEPS})
  if(tests)
    kiln_add_test(${name}_test SOURCES ${tests} LIBS ${name} ${L_TEST_DEPS})
  endif()
endfunction()
