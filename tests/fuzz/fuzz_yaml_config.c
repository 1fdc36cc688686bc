/* libFuzzer target for the YAML VM definition loader: any bytes must load without a crash, leak
 * or hang, and whatever loads cleanly must print (kiln config) and load back to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/config/config_yaml.h"

/* Loads size bytes of text; returns the number of problems (or -1 if it did not parse). */
static int load(const char *text, size_t size, struct vm_config *cfg)
{
    struct config_yaml_origin origin = {0};
    struct config_problems problems = {.count = 0};
    config_init(cfg);
    /* An absolute folder that does not exist: relative paths never reach real files. */
    int r = config_yaml_load_buffer("fuzz.yaml", "/nonexistent-kiln-fuzz", text, size, cfg, &origin,
                                    &problems);
    if (r == 0) {
        struct config_namer namer = {config_yaml_name, &origin};
        config_check_all(cfg, &namer, false, &problems);
    }
    for (unsigned i = 0; i < problems.count; i++) /* every message is one line */
        if (strchr(problems.lines[i], '\n'))
            abort();
    int n = r < 0 ? -1 : (int)config_problems_total(&problems);
    config_problems_free(&problems);
    config_yaml_origin_free(&origin);
    return n;
}

static char *emit(const struct vm_config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (!out)
        abort();
    struct error err;
    int r = config_yaml_emit(cfg, out, &err);
    fclose(out);
    if (r < 0) {
        free(text);
        return NULL;
    }
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vm_config cfg;
    if (load((const char *)data, size, &cfg) == 0) {
        size_t len = 0, len_again = 0;
        char *text = emit(&cfg, &len);
        if (text) {
            struct vm_config again;
            if (load(text, len, &again) != 0)
                abort(); /* printed config that does not load back */
            char *text_again = emit(&again, &len_again);
            if (!text_again || len != len_again || memcmp(text, text_again, len) != 0)
                abort(); /* loads back to a different config */
            free(text_again);
            config_free(&again);
            free(text);
        }
    }
    config_free(&cfg);
    return 0;
}
