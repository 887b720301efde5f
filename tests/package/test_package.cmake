# ctest Package.InstallAndConsume (cmake -P): install the build tree into a fresh prefix and
# use it the way another project would. Fails on the first step that does not work.
#   1. cmake --install into WORK/prefix; internal headers must not be there;
#   2. configure + build tests/package (check_golden.cpp via find_package(sta)) out of tree,
#      with nothing but the prefix on CMAKE_PREFIX_PATH, and run it on the tiny golden folder;
#   3. pkg-config --cflags --libs sta points into the prefix;
#   4. the installed `sta` program and Python module run from the prefix.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${STA_WORK_DIR}/prefix)
file(REMOVE_RECURSE ${STA_WORK_DIR})
run(${CMAKE_COMMAND} --install ${STA_BUILD_DIR} --prefix ${prefix})

foreach(header sta/attention.hpp sta/golden.hpp sta/json.hpp sta/npy.hpp)
  if(NOT EXISTS ${prefix}/include/${header})
    message(FATAL_ERROR "public header ${header} not installed")
  endif()
endforeach()
file(GLOB_RECURSE installed_headers RELATIVE ${prefix}/include ${prefix}/include/*)
foreach(h ${installed_headers})
  if(NOT h MATCHES "^sta/[a-z0-9_]+\\.hpp$")
    message(FATAL_ERROR "unexpected installed header ${h} (internal headers stay out)")
  endif()
endforeach()
if(EXISTS ${prefix}/include/flash.hpp OR EXISTS ${prefix}/include/sta/flash.hpp
   OR EXISTS ${prefix}/include/gemm.hpp OR EXISTS ${prefix}/include/cli.hpp)
  message(FATAL_ERROR "an internal header was installed")
endif()

set(consumer ${STA_WORK_DIR}/consumer)
run(${CMAKE_COMMAND} -S ${STA_SOURCE_DIR}/tests/package -B ${consumer} -G "${STA_CMAKE_GENERATOR}"
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
    -DSTA_EXAMPLE_SOURCE=${STA_SOURCE_DIR}/examples/check_golden.cpp)
run(${CMAKE_COMMAND} --build ${consumer})
run(${consumer}/check_golden ${STA_GOLDEN})
message(STATUS "out-of-tree check_golden: ${RUN_OUTPUT}")

find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  file(GLOB pc_file ${prefix}/lib*/pkgconfig/sta.pc ${prefix}/lib/*/pkgconfig/sta.pc)
  get_filename_component(pc_dir "${pc_file}" DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  run(${PKG_CONFIG} --cflags --libs sta)
  string(STRIP "${RUN_OUTPUT}" flags)
  if(NOT flags MATCHES "-lsta" OR NOT flags MATCHES "-lopenblas|-L")
    message(FATAL_ERROR "pkg-config --libs sta: '${flags}' lacks -lsta / openblas")
  endif()
  string(REGEX MATCH "-I([^ ]+)" _ "${flags}")
  if(NOT EXISTS "${CMAKE_MATCH_1}/sta/attention.hpp")
    message(FATAL_ERROR "pkg-config --cflags sta: '${flags}' does not point at the installed headers")
  endif()
  run(${PKG_CONFIG} --modversion sta)
  message(STATUS "pkg-config: sta ${RUN_OUTPUT} ${flags}")
endif()

run(${prefix}/bin/sta counts --mask sta:3,3,3 --json)
if(NOT RUN_OUTPUT MATCHES "\"dense\": *8100")
  message(FATAL_ERROR "installed sta counts: unexpected output ${RUN_OUTPUT}")
endif()
if(STA_WITH_PYTHON)
  # Run from the work folder with only the installed package on the path.
  set(ENV{PYTHONPATH} ${prefix}/${STA_PYTHON_INSTALL_DIR})
  execute_process(COMMAND ${STA_PYTHON} -c
    "import sta, os; assert sta.__file__.startswith(os.environ['PYTHONPATH']), sta.__file__; print(sta.__version__, sta.block_counts((12, 16, 16), mask='sta:1,1,1')['dense'])"
    WORKING_DIRECTORY ${STA_WORK_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES " 8")
    message(FATAL_ERROR "installed Python module: rc ${rc}\n${out}\n${err}")
  endif()
  message(STATUS "installed Python module: ${out}")
endif()
