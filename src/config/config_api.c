/* The control API's setting (--api-socket PATH|none, YAML `api`): its setter and getter, which
 * the settings table uses for the flag, the YAML key and `kiln config` alike. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "kiln/config/config_settings.h"

int config_set_api(struct vm_config *cfg, const char *label, const char *text, struct error *err)
{
    /* sun_path holds the path and its NUL: a longer one could never be bound. */
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    size_t len = strlen(text);
    if (len == 0 || len > max) {
        char quoted[CONFIG_QUOTE_SIZE];
        return error_fmt(err, -EINVAL, "%s: '%s' cannot be used (expected " CONFIG_API_EXPECTED ")",
                         label, config_quote(text, quoted, sizeof(quoted)));
    }
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(cfg->api_socket);
    cfg->api_socket = copy;
    return 0;
}

int config_get_api(const struct vm_config *cfg, char **text)
{
    return config_text(cfg->api_socket, text);
}

bool config_api_disabled(const struct vm_config *cfg)
{
    return cfg->api_socket && strcmp(cfg->api_socket, CONFIG_API_NONE) == 0;
}
