/* Finding VMs' API sockets in the run folder: every socket there (kiln ps), and the one a
 * user means by a VM's name or pid (kiln ctl web1, kiln ctl 1234). */
#ifndef KILN_CTL_FIND_H
#define KILN_CTL_FIND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kiln/util/error.h"

struct ctl_socket_list {
    char **names; /* file names (not paths), sorted */
    size_t count;
};

/* The *.sock files of dir. */
int ctl_list_sockets(const char *dir, struct ctl_socket_list *list, struct error *err);
void ctl_socket_list_free(struct ctl_socket_list *list);

/* Splits a default socket name "NAME.PID.sock": false if it is not of that form. */
bool ctl_socket_name_split(const char *file_name, char *name, size_t name_len, pid_t *pid);

/* Whether the process a socket's name gives is gone: a VM killed before it could remove its
 * socket. */
bool ctl_socket_owner_gone(pid_t pid);

/* What the user typed as SOCKET, as a socket path: itself if it has a '/' or names a file
 * here; else the one socket of the run folder whose VM has that name or pid. No match or
 * several is an error naming the folder (and the matches). */
int ctl_find_socket(const char *target, char *path, size_t len, struct error *err);

#endif
