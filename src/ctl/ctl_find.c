/* Finds VMs' API sockets in the run folder: the list kiln ps walks, and a VM's socket by its
 * name or pid for kiln ctl (skipping sockets left by VMs that died). */
#include "kiln/ctl/ctl_find.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/api/api_socket.h"

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *text, const char *end)
{
    size_t text_len = strlen(text), end_len = strlen(end);
    return text_len >= end_len && strcmp(text + text_len - end_len, end) == 0;
}

int ctl_list_sockets(const char *dir, struct ctl_socket_list *list, struct error *err)
{
    list->names = NULL;
    list->count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return error_fmt(err, -errno, "run folder %s: %s", dir, strerror(errno));
    size_t cap = 0;
    for (struct dirent *entry; (entry = readdir(d));) {
        if (!ends_with(entry->d_name, ".sock") || entry->d_name[0] == '.')
            continue;
        if (list->count == cap) {
            cap = cap ? cap * 2 : 16;
            char **names = realloc(list->names, cap * sizeof(*names));
            if (!names)
                break;
            list->names = names;
        }
        char *name = strdup(entry->d_name);
        if (!name)
            break;
        list->names[list->count++] = name;
    }
    closedir(d);
    if (list->count)
        qsort(list->names, list->count, sizeof(*list->names), compare_names);
    return 0;
}

void ctl_socket_list_free(struct ctl_socket_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->names[i]);
    free(list->names);
    list->names = NULL;
    list->count = 0;
}

bool ctl_socket_name_split(const char *file_name, char *name, size_t name_len, pid_t *pid)
{
    if (!ends_with(file_name, ".sock"))
        return false;
    size_t stem_len = strlen(file_name) - strlen(".sock");
    const char *digits_end = file_name + stem_len;
    const char *digits = digits_end;
    while (digits > file_name && digits[-1] >= '0' && digits[-1] <= '9')
        digits--;
    /* NAME, a dot, at least one digit: "web1.1234.sock". */
    if (digits == digits_end || digits - file_name < 2 || digits[-1] != '.' ||
        digits_end - digits > 9)
        return false;
    size_t stem_name_len = (size_t)(digits - 1 - file_name);
    if (stem_name_len >= name_len)
        return false;
    memcpy(name, file_name, stem_name_len);
    name[stem_name_len] = '\0';
    *pid = (pid_t)strtol(digits, NULL, 10);
    return true;
}

bool ctl_socket_owner_gone(pid_t pid)
{
    return pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

static bool all_digits(const char *text)
{
    return *text && strspn(text, "0123456789") == strlen(text);
}

int ctl_find_socket(const char *target, char *path, size_t len, struct error *err)
{
    if (strchr(target, '/') || access(target, F_OK) == 0) {
        if (snprintf(path, len, "%s", target) >= (int)len)
            return error_fmt(err, -ENAMETOOLONG, "API socket %s: path too long", target);
        return 0;
    }
    char dir[256];
    int r = api_run_dir(dir, sizeof(dir), err);
    if (r < 0)
        return r;
    struct ctl_socket_list list;
    r = ctl_list_sockets(dir, &list, err);
    if (r < 0)
        return r;
    char matches[512] = "";
    size_t count = 0;
    const char *found = NULL;
    for (size_t i = 0; i < list.count; i++) {
        char name[256];
        pid_t pid;
        if (!ctl_socket_name_split(list.names[i], name, sizeof(name), &pid))
            continue;
        bool by_pid = all_digits(target) && pid == (pid_t)strtol(target, NULL, 10);
        if ((strcmp(name, target) != 0 && !by_pid) || ctl_socket_owner_gone(pid))
            continue;
        size_t used = strlen(matches);
        snprintf(matches + used, sizeof(matches) - used, "%s%s", count ? ", " : "", list.names[i]);
        found = list.names[i];
        count++;
    }
    if (count == 1 && snprintf(path, len, "%s/%s", dir, found) >= (int)len)
        r = error_fmt(err, -ENAMETOOLONG, "API socket %s/%s: path too long", dir, found);
    else if (count == 0)
        r = error_fmt(err, -ENOENT,
                      "%s: no such socket, and no VM of that name or pid in %s (see kiln ps)",
                      target, dir);
    else if (count > 1)
        r = error_fmt(err, -EEXIST, "%s: %zu VMs match in %s: %s (give the socket's path)", target,
                      count, dir, matches);
    ctl_socket_list_free(&list);
    return r;
}
