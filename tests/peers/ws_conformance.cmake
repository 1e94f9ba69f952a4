# The WebSocket peers and their tests, included by tests/CMakeLists.txt.
# Each test needs a program from Debian (tools/deps.txt): a missing one
# fails the test with a message naming the package, it never skips.
set(WS_PEERS ${CMAKE_CURRENT_SOURCE_DIR}/peers)
set(WS_PYTHON /usr/bin/python3)

add_library(ws_conformance_io STATIC ${WS_PEERS}/ws_conformance_io.c)
target_link_libraries(ws_conformance_io PUBLIC conc_static Threads::Threads)
target_include_directories(ws_conformance_io PUBLIC ${WS_PEERS}
  ${PROJECT_SOURCE_DIR}/src ${PROJECT_BINARY_DIR}/gen)
target_compile_definitions(ws_conformance_io PUBLIC _GNU_SOURCE)
target_compile_options(ws_conformance_io PRIVATE ${CONC_WARN})

foreach(name ws_conformance_peer ws_chromium_peer ws_lws_peer)
  add_executable(${name} ${WS_PEERS}/${name}.c)
  target_link_libraries(${name} PRIVATE ws_conformance_io)
  target_compile_options(${name} PRIVATE ${CONC_WARN})
endforeach()

# The conformance suite (ws_conformance.py): the subset under CTest, both
# directions; `make test-conformance` runs every case (label
# conformance-full, excluded from the default run by its configuration).
set(WS_CONF ${WS_PEERS}/ws_conformance.py)
set(WS_ECHO_PEER $<TARGET_FILE:ws_conformance_peer>)
add_test(NAME ws_conformance_client
  COMMAND ${WS_PYTHON} ${WS_CONF} client --subset
          --server-cmd "${WS_ECHO_PEER} server 0")
add_test(NAME ws_conformance_server
  COMMAND ${WS_PYTHON} ${WS_CONF} server --subset
          --client-cmd "${WS_ECHO_PEER} client {url}")
set_tests_properties(ws_conformance_client ws_conformance_server
  PROPERTIES TIMEOUT 180 LABELS "ws;conformance")

# The same subset against the I/O binding: examples/ws_echo_server as the
# server, ws_echo_client (conc_ws_connect) as the client.
add_executable(ws_echo_client ${WS_PEERS}/ws_echo_client.c)
target_link_libraries(ws_echo_client PRIVATE conc_static)
target_compile_options(ws_echo_client PRIVATE ${CONC_WARN})
add_test(NAME ws_conformance_binding_client
  COMMAND ${WS_PYTHON} ${WS_CONF} server --subset
          --client-cmd "$<TARGET_FILE:ws_echo_client> {url}")
set_tests_properties(ws_conformance_binding_client
  PROPERTIES TIMEOUT 180 LABELS "ws;conformance")
if(CONC_BUILD_EXAMPLES) # examples/ is added after tests/
  add_test(NAME ws_conformance_binding_server
    COMMAND ${WS_PYTHON} ${WS_CONF} client --subset
            --server-cmd "$<TARGET_FILE:ex_ws_echo_server> 0")
  set_tests_properties(ws_conformance_binding_server
    PROPERTIES TIMEOUT 180 LABELS "ws;conformance")
endif()

# Headless Chromium loads a page from a conc server and talks back over a
# WebSocket with permessage-deflate (ws_chromium.py): the I/O binding's
# server (ws_chromium), and the engine over blocking sockets
# (ws_chromium_engine).
add_executable(ws_chromium_server ${WS_PEERS}/ws_chromium_server.c)
target_link_libraries(ws_chromium_server PRIVATE conc_static)
target_compile_options(ws_chromium_server PRIVATE ${CONC_WARN})
add_test(NAME ws_chromium
  COMMAND ${WS_PYTHON} ${WS_PEERS}/ws_chromium.py
          $<TARGET_FILE:ws_chromium_server> 0)
add_test(NAME ws_chromium_engine
  COMMAND ${WS_PYTHON} ${WS_PEERS}/ws_chromium.py
          $<TARGET_FILE:ws_chromium_peer> 0)
set_tests_properties(ws_chromium ws_chromium_engine
  PROPERTIES TIMEOUT 60 LABELS "ws;interop")

# libwebsockets' test server serves the engine's client: its mirror and
# dumb-increment protocols, permessage-deflate offered (ws_lws.py).
add_test(NAME ws_lws
  COMMAND ${WS_PYTHON} ${WS_PEERS}/ws_lws.py $<TARGET_FILE:ws_lws_peer>)
set_tests_properties(ws_lws PROPERTIES TIMEOUT 45 LABELS "ws;interop")
