# What `cmake --install` puts where, and the Debian package CPack makes of it (docs/install.md):
# bin/kiln, the man pages, bash completion, example VM definitions in share/kiln/examples/,
# and the guest-side files (kiln-exit, hello.elf) in lib/kiln/.
include(GNUInstallDirs)

# lib/kiln, not bin/ and not the multiarch libdir: kiln-exit and hello.elf run inside guests,
# never on the host, and Debian keeps a package's private binaries in /usr/lib/PACKAGE.
set(KILN_GUEST_INSTALL_DIR lib/kiln)
set(KILN_EXAMPLES_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/kiln/examples)

install(TARGETS kiln RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET kiln-exit)
  install(TARGETS kiln-exit hello.elf RUNTIME DESTINATION ${KILN_GUEST_INSTALL_DIR})
endif()

# Man pages: written in roff (docs/man/), the version filled in, gzipped as Debian wants
# (-n: no time stamp, so the package is reproducible).
set(KILN_MAN_PAGES kiln.1 kiln-run.1 kiln-test.1 kiln-ctl.1 kiln-ps.1 kiln-restore.1 kiln-receive.1 kiln-snapshot.1
  kiln-vm.yaml.5)
set(man_outputs)
foreach(page ${KILN_MAN_PAGES})
  configure_file(${CMAKE_SOURCE_DIR}/docs/man/${page} ${CMAKE_BINARY_DIR}/man/${page} @ONLY)
  add_custom_command(
    OUTPUT ${CMAKE_BINARY_DIR}/man/${page}.gz
    COMMAND gzip -9 -n -f -k ${CMAKE_BINARY_DIR}/man/${page}
    DEPENDS ${CMAKE_BINARY_DIR}/man/${page}
    COMMENT "Compressing the man page ${page}")
  list(APPEND man_outputs ${CMAKE_BINARY_DIR}/man/${page}.gz)
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${CMAKE_BINARY_DIR}/man/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(kiln_man ALL DEPENDS ${man_outputs})

# Debian wants the licence as share/doc/PACKAGE/copyright.
install(FILES ${CMAKE_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
install(FILES ${CMAKE_SOURCE_DIR}/completion/kiln.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME kiln)

# The examples find the guest kit in the repository's build/ by default; installed, they find
# it in PREFIX/lib/kiln, given relative to their own folder so any --prefix works.
file(GLOB example_configs ${CMAKE_SOURCE_DIR}/configs/*.yaml)
foreach(example ${example_configs})
  get_filename_component(name ${example} NAME)
  file(READ ${example} text)
  string(REPLACE "../build/tests/guest" "../../../${KILN_GUEST_INSTALL_DIR}" text "${text}")
  file(WRITE ${CMAKE_BINARY_DIR}/examples/${name}
       "# Installed copy of kiln's configs/${name}: the guest kit is in PREFIX/${KILN_GUEST_INSTALL_DIR}.\n${text}")
  install(FILES ${CMAKE_BINARY_DIR}/examples/${name} DESTINATION ${KILN_EXAMPLES_INSTALL_DIR})
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${example_configs})
# CPU templates (docs/cpu-templates.md) name no build output: installed as they are.
file(GLOB example_cpu_templates ${CMAKE_SOURCE_DIR}/configs/cpu-templates/*.yaml)
install(FILES ${example_cpu_templates} DESTINATION ${KILN_EXAMPLES_INSTALL_DIR}/cpu-templates)

# The Debian package (`cpack -G DEB`, scripts/deb.sh): Depends come from dpkg-shlibdeps, which
# reads the libraries bin/kiln links (libuv1, libyaml-0-2, libseccomp2, libjansson4, libc6, and
# libsodium23 as soon as kiln calls the migration link: the linker drops a library nothing uses),
# so they cannot drift.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kiln)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "The kiln developers <kiln@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "small KVM hypervisor: one VM per process, virtio-mmio devices")
set(CPACK_PACKAGE_DESCRIPTION "kiln boots Linux kernels (bzImage, ELF vmlinux, PVH ELF) and tiny
test guests on /dev/kvm, with a serial console and virtio-mmio block, network, console and
entropy devices, from the command line or a YAML VM definition. It also runs scripted test
boots (kiln test).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION otherosfs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES bin/kiln ${KILN_GUEST_INSTALL_DIR}/kiln-exit)
include(CPack)
