/* Where the control API's sockets live (the run folder) and how a VM binds its socket:
 * private to the user, never stealing a live VM's socket. */
#ifndef KILN_API_SOCKET_H
#define KILN_API_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

#include "kiln/util/error.h"

/* sun_path's size: a socket path must be shorter (it is NUL-terminated). */
#define API_SOCKET_PATH_MAX 108

/* The run folder: $XDG_RUNTIME_DIR/kiln if XDG_RUNTIME_DIR is set, else /tmp/kiln-<uid>.
 * Created 0700 if missing; refused (one clear line) if it exists but is not a directory owned
 * by this user with no group/other access. */
int api_run_dir(char *out, size_t len, struct error *err);

/* The default socket of a VM: <run dir>/<name>.<pid>.sock (name "kiln" if the VM has none). */
int api_default_socket_path(const char *name, pid_t pid, char *out, size_t len, struct error *err);

/* Binds and listens on a Unix socket at path, mode 0600, owned by uid/gid if those are not
 * -1 (the jail hands the socket to the jailed user). A path that is a live socket (connect
 * succeeds) is refused: "API socket PATH: another process is serving it"; a stale socket
 * (ECONNREFUSED) is replaced; a path that exists and is not a socket is refused. Too-long
 * paths (sun_path is 108 bytes) are refused with the limit named. *fd_out is a non-blocking,
 * close-on-exec listening socket the caller owns (api_server_start takes it over). */
int api_socket_bind(const char *path, uid_t uid, gid_t gid, int *fd_out, struct error *err);

#endif
