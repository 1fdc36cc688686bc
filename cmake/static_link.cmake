# The kiln binary as one static executable (KILN_STATIC), as Firecracker ships: nothing to load
# at start, no shared library pages per VM, and a jail needs no /lib. Its resident size is what
# an idle VM costs the host (docs/resources.md, "VMM overhead").
#
# kiln_core's link interface names the shared libraries (the unit tests use those), so the
# static binary links kiln_core's archive and the libraries' own archives by path instead.
# Debian ships every archive needed (libuv1-dev's is libuv_a.a); where one is missing, or for
# sanitizer builds (their runtimes need a dynamic binary), kiln is linked dynamically.

option(KILN_STATIC "Link the kiln binary statically (off for sanitizer builds)" ON)

function(kiln_static_archives out)
  set(archives)
  foreach(name uv_a yaml seccomp jansson sodium)
    find_library(KILN_ARCHIVE_${name} NAMES lib${name}.a)
    if(NOT KILN_ARCHIVE_${name})
      message(STATUS "kiln: lib${name}.a not found: linking kiln dynamically")
      set(${out} "" PARENT_SCOPE)
      return()
    endif()
    list(APPEND archives ${KILN_ARCHIVE_${name}})
  endforeach()
  set(${out} ${archives} PARENT_SCOPE)
endfunction()

# kiln_link_binary(TARGET): links TARGET (kiln's main and its command files) with kiln_core,
# statically where it can.
function(kiln_link_binary target)
  set(static ${KILN_STATIC})
  if(KILN_SANITIZE OR KILN_TSAN OR KILN_FUZZ)
    set(static OFF)
  endif()
  if(static)
    kiln_static_archives(archives)
    if(NOT archives)
      set(static OFF)
    endif()
  endif()
  if(NOT static)
    target_link_libraries(${target} PRIVATE kiln_core)
    return()
  endif()
  target_include_directories(${target} PRIVATE
    $<TARGET_PROPERTY:kiln_core,INTERFACE_INCLUDE_DIRECTORIES>)
  target_compile_definitions(${target} PRIVATE
    $<TARGET_PROPERTY:kiln_core,INTERFACE_COMPILE_DEFINITIONS>)
  add_dependencies(${target} kiln_core)
  # getaddrinfo (kiln migrate/receive with a host name) still loads glibc's NSS modules at run
  # time, as a dynamic kiln does; ld says so in a warning about static glibc, which is expected.
  target_link_libraries(${target} PRIVATE $<TARGET_FILE:kiln_core> ${archives} Threads::Threads)
  target_link_options(${target} PRIVATE -static-pie -Wl,--gc-sections -Wl,-z,pack-relative-relocs)
endfunction()
