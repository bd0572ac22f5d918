# librdkafka: the static build of scripts/build-librdkafka.sh when it is installed (2.12.0; see
# docs/adr-004-real-kafka.md: Debian's 2.0.2 fails SCRAM against Kafka 4.x), else Debian's
# shared librdkafka-dev. Defines the target painpoint_rdkafka and PAINPOINT_RDKAFKA_VERSION; the
# embedded broker (the mock cluster) comes from the same library as the clients.
if(DEFINED ENV{PAINPOINT_DATA_HOME})
  set(_painpoint_data_home "$ENV{PAINPOINT_DATA_HOME}")
elseif(DEFINED ENV{XDG_CACHE_HOME})
  set(_painpoint_data_home "$ENV{XDG_CACHE_HOME}/painpoint")
else()
  set(_painpoint_data_home "$ENV{HOME}/.cache/painpoint")
endif()
set(PAINPOINT_RDKAFKA_ROOT "${_painpoint_data_home}/librdkafka-2.12.0" CACHE PATH
    "Prefix of scripts/build-librdkafka.sh's librdkafka; empty or absent: Debian's librdkafka")

add_library(painpoint_rdkafka INTERFACE)
if(PAINPOINT_RDKAFKA_ROOT AND EXISTS "${PAINPOINT_RDKAFKA_ROOT}/lib/librdkafka.a"
   AND EXISTS "${PAINPOINT_RDKAFKA_ROOT}/include/librdkafka/rdkafka.h")
  # Its private dependencies, as its configure found them (scripts/build-librdkafka.sh).
  pkg_check_modules(RDKAFKA_DEPS REQUIRED IMPORTED_TARGET libssl libcrypto libzstd liblz4 zlib)
  add_library(painpoint_rdkafka_static STATIC IMPORTED)
  set_target_properties(painpoint_rdkafka_static PROPERTIES
    IMPORTED_LOCATION "${PAINPOINT_RDKAFKA_ROOT}/lib/librdkafka.a"
    INTERFACE_INCLUDE_DIRECTORIES "${PAINPOINT_RDKAFKA_ROOT}/include"
    INTERFACE_LINK_LIBRARIES "PkgConfig::RDKAFKA_DEPS;Threads::Threads;${CMAKE_DL_LIBS};m;rt")
  target_link_libraries(painpoint_rdkafka INTERFACE painpoint_rdkafka_static)
  file(STRINGS "${PAINPOINT_RDKAFKA_ROOT}/include/librdkafka/rdkafka.h" _rdkafka_version_line
       REGEX "^#define RD_KAFKA_VERSION +0x[0-9a-fA-F]+")
  string(REGEX REPLACE ".*0x([0-9a-fA-F]+).*" "\\1" _rdkafka_hex "${_rdkafka_version_line}")
  math(EXPR _rdkafka_major "0x${_rdkafka_hex} >> 24")
  math(EXPR _rdkafka_minor "(0x${_rdkafka_hex} >> 16) & 255")
  math(EXPR _rdkafka_patch "(0x${_rdkafka_hex} >> 8) & 255")
  set(PAINPOINT_RDKAFKA_VERSION "${_rdkafka_major}.${_rdkafka_minor}.${_rdkafka_patch}")
  message(STATUS "librdkafka: ${PAINPOINT_RDKAFKA_VERSION}, static, "
                 "from ${PAINPOINT_RDKAFKA_ROOT} (scripts/build-librdkafka.sh)")
else()
  pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
  target_link_libraries(painpoint_rdkafka INTERFACE PkgConfig::RDKAFKA)
  set(PAINPOINT_RDKAFKA_VERSION "${RDKAFKA_VERSION}")
  message(STATUS "librdkafka: system ${RDKAFKA_VERSION} (pkg-config); "
                 "run scripts/build-librdkafka.sh for 2.12.0, which SCRAM on Kafka 4.x needs")
endif()
