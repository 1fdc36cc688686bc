/* The CPU template setting (--cpu-template host|minimal|FILE, YAML `cpu-template`): its setter
 * and the template a config asks for. The file itself is read when the VM is built. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_settings.h"

int config_set_cpu_template(struct vm_config *cfg, const char *label, const char *text,
                            struct error *err)
{
    if (text[0] == '\0')
        return error_fmt(err, -EINVAL,
                         "%s: empty value (expected " CONFIG_CPU_TEMPLATE_EXPECTED ")", label);
    char *copy = strdup(text);
    if (!copy)
        return error_fmt(err, -ENOMEM, "out of memory");
    free(cfg->cpu_template);
    cfg->cpu_template = copy;
    return 0;
}

const char *config_cpu_template(const struct vm_config *cfg)
{
    return cfg->cpu_template ? cfg->cpu_template : "host";
}

bool config_cpu_template_is_file(const struct vm_config *cfg)
{
    return cfg->cpu_template && strcmp(cfg->cpu_template, "host") != 0 &&
           strcmp(cfg->cpu_template, "minimal") != 0;
}
